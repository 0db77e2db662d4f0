"""The networks a node belongs to, in ``networks.sqlite3`` (mode 0600: it holds keys).

Rosters (which carry the invitations' accounting), epoch keys, the torrents
known to belong to a network, and members' addresses.
Every change is one transaction, committed before the caller answers a peer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from servent.node.private_database import PrivateDatabase
from servent.proto.network import Roster, decode_roster

__all__ = ["NetworkShare", "NetworkStore"]

DATABASE_NAME = "networks.sqlite3"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS networks (id BLOB PRIMARY KEY, name TEXT NOT NULL UNIQUE,"
    " roster BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS epoch_keys (network BLOB NOT NULL, epoch INTEGER NOT NULL,"
    " key BLOB NOT NULL, PRIMARY KEY (network, epoch))",
    # unused since the accounting moved into the roster; kept so old databases open
    "CREATE TABLE IF NOT EXISTS invites (id BLOB PRIMARY KEY, network BLOB NOT NULL,"
    " digest BLOB NOT NULL, uses_left INTEGER NOT NULL, expires INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS shares (info_hash BLOB PRIMARY KEY, network BLOB NOT NULL,"
    " name TEXT NOT NULL, size INTEGER NOT NULL, own INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS addresses (member BLOB PRIMARY KEY, addresses TEXT NOT NULL)",
)


@dataclass(frozen=True, slots=True)
class NetworkShare:
    info_hash: bytes
    network: bytes
    name: str
    size: int
    own: bool


class NetworkStore(PrivateDatabase):
    """Typed access to the networks database."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, DATABASE_NAME, "networks")

    def _prepare(self) -> None:
        with self._transaction() as db:
            for statement in _SCHEMA:
                db.execute(statement)

    # -- networks and keys ----------------------------------------------------------

    def rosters(self) -> list[Roster]:
        with self._lock:
            rows = self._db.execute("SELECT roster FROM networks ORDER BY name").fetchall()
        return [decode_roster(bytes(row[0])) for row in rows]

    def put_roster(self, roster: Roster, key: tuple[int, bytes] | None = None) -> None:
        """Store ``roster`` (and an epoch key) in one transaction."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO networks (id, name, roster) VALUES (?, ?, ?) ON CONFLICT(id)"
                " DO UPDATE SET roster = excluded.roster",
                (roster.network_id, roster.name, roster.encode()),
            )
            if key is not None:
                db.execute(
                    "INSERT OR REPLACE INTO epoch_keys (network, epoch, key) VALUES (?, ?, ?)",
                    (roster.network_id, key[0], key[1]),
                )

    def put_key(self, network: bytes, epoch: int, key: bytes) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO epoch_keys (network, epoch, key) VALUES (?, ?, ?)",
                (network, epoch, key),
            )

    def keys(self) -> dict[tuple[bytes, int], bytes]:
        with self._lock:
            rows = self._db.execute("SELECT network, epoch, key FROM epoch_keys").fetchall()
        return {(bytes(n), int(e)): bytes(k) for n, e, k in rows}

    def forget(self, network: bytes) -> None:
        """Leave: roster, keys and invitations go.  The record of its torrents stays, so
        they stay closed (no key opens them any more) instead of turning public."""
        with self._transaction() as db:
            for table, column in (
                ("networks", "id"), ("epoch_keys", "network"), ("invites", "network"),
            ):  # fmt: skip
                db.execute(f"DELETE FROM {table} WHERE {column} = ?", (network,))

    # -- torrents of networks -----------------------------------------------------------

    def put_share(self, share: NetworkShare) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO shares (info_hash, network, name, size, own) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT(info_hash) DO UPDATE SET own = max(own, excluded.own)",
                (share.info_hash, share.network, share.name, share.size, int(share.own)),
            )

    def shares(self) -> list[NetworkShare]:
        with self._lock:
            rows = self._db.execute(
                "SELECT info_hash, network, name, size, own FROM shares ORDER BY name"
            ).fetchall()
        return [NetworkShare(bytes(h), bytes(n), str(m), int(s), bool(o)) for h, n, m, s, o in rows]

    # -- where members are ------------------------------------------------------------

    def put_addresses(self, member: bytes, addresses: str) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO addresses (member, addresses) VALUES (?, ?)",
                (member, addresses),
            )

    def addresses(self) -> dict[bytes, str]:
        with self._lock:
            rows = self._db.execute("SELECT member, addresses FROM addresses").fetchall()
        return {bytes(m): str(a) for m, a in rows}
