"""Messages, contacts and blocks on disk: their own sqlite database in the data directory.

Why a database of its own (``messages.sqlite3``): messages are a room apart
from torrents, with their own schema and migrations, and a user can back up
or clear their conversations without touching transfers. Like the state
database it commits with ``synchronous=FULL`` in WAL mode, so a message
accepted by :meth:`MessageStore.queue_outgoing` or :meth:`MessageStore.receive`
survives a kill -9 the instant after the call returns; a sender acknowledges
a direct message only after it is stored.

One table holds both directions. An outgoing message with neither
``delivered`` nor ``failed`` set is in the outbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from servent.errors import StateError
from servent.node.private_database import PrivateDatabase

DATABASE_NAME = "messages.sqlite3"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE messages (
            id BLOB PRIMARY KEY,
            direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
            kind TEXT NOT NULL CHECK (kind IN ('direct', 'broadcast')),
            peer BLOB NOT NULL,
            channel TEXT,
            text TEXT NOT NULL,
            time REAL NOT NULL,
            received REAL,
            delivered REAL,
            failed TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt REAL NOT NULL DEFAULT 0,
            last_error TEXT,
            read INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX messages_by_time ON messages (time)",
        "CREATE INDEX messages_by_peer ON messages (peer, time)",
        "CREATE TABLE contacts (id BLOB PRIMARY KEY, name TEXT NOT NULL, added REAL NOT NULL)",
        "CREATE TABLE blocked (id BLOB PRIMARY KEY, added REAL NOT NULL)",
        "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    ),
    ("CREATE TABLE channels (name TEXT PRIMARY KEY, added REAL NOT NULL)",),
)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One message as the node keeps it (``peer`` is the other party's public key)."""

    id: bytes
    direction: str
    kind: str
    peer: bytes
    channel: str | None
    text: str
    time: float
    received: float | None = None
    delivered: float | None = None
    failed: str | None = None
    attempts: int = 0
    next_attempt: float = 0.0
    last_error: str | None = None
    read: bool = False


@dataclass(frozen=True, slots=True)
class Contact:
    id: bytes
    name: str
    added: float


_COLUMNS = (
    "id, direction, kind, peer, channel, text, time, received, delivered, failed,"
    " attempts, next_attempt, last_error, read"
)


class MessageStore(PrivateDatabase):
    """Typed access to the message database; each change is one transaction."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, DATABASE_NAME, "message")

    def _prepare(self) -> None:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            raise StateError(f"message database {self.path} is newer than this servent")
        for target in range(version, len(MIGRATIONS)):
            with self._transaction() as db:
                for statement in MIGRATIONS[target]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={target + 1}")

    # ------------------------------------------------------------------ messages

    def queue_outgoing(self, message: StoredMessage) -> None:
        """Store a message we send (direct: it enters the outbox)."""
        self._insert(message)

    def receive(self, message: StoredMessage) -> bool:
        """Store a received message; false when its ID was already stored (a retry)."""
        return self._insert(message)

    def _insert(self, message: StoredMessage) -> bool:
        values = (
            message.id, message.direction, message.kind, message.peer, message.channel,
            message.text, message.time, message.received, message.delivered, message.failed,
            message.attempts, message.next_attempt, message.last_error, int(message.read),
        )  # fmt: skip
        with self._transaction() as db:
            cursor = db.execute(
                f"INSERT OR IGNORE INTO messages ({_COLUMNS}) VALUES ({', '.join('?' * 14)})",
                values,
            )
            return cursor.rowcount == 1

    def outbox(self) -> list[StoredMessage]:
        """Outgoing direct messages not yet delivered nor given up, oldest first."""
        return self._select(
            "direction = 'out' AND kind = 'direct' AND delivered IS NULL AND failed IS NULL"
        )

    def record_attempt(
        self, message_id: bytes, attempts: int, next_attempt: float, error: str | None
    ) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE messages SET attempts = ?, next_attempt = ?, last_error = ? WHERE id = ?",
                (attempts, next_attempt, error, message_id),
            )

    def mark_delivered(self, message_id: bytes, when: float) -> None:
        with self._transaction() as db:
            db.execute("UPDATE messages SET delivered = ? WHERE id = ?", (when, message_id))

    def mark_failed(self, message_id: bytes, reason: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE messages SET failed = ? WHERE id = ?", (reason, message_id))

    def mark_read(self, peer: bytes | None = None) -> None:
        with self._transaction() as db:
            if peer is None:
                db.execute("UPDATE messages SET read = 1 WHERE direction = 'in'")
            else:
                db.execute(
                    "UPDATE messages SET read = 1 WHERE direction = 'in' AND peer = ?", (peer,)
                )

    def mark_read_channel(self, channel: str) -> None:
        """Mark the received broadcasts of one channel (``""``: the whole network) read."""
        with self._transaction() as db:
            db.execute(
                "UPDATE messages SET read = 1 WHERE direction = 'in' AND kind = 'broadcast'"
                " AND COALESCE(channel, '') = ?",
                (channel,),
            )

    def get(self, message_id: bytes) -> StoredMessage | None:
        found = self._select("id = ?", (message_id,))
        return found[0] if found else None

    def messages(
        self,
        *,
        direction: str | None = None,
        since: float | None = None,
        limit: int = 1000,
        peer: bytes | None = None,
        channel: str | None = None,
    ) -> list[StoredMessage]:
        """Messages oldest first, the newest ``limit`` of them; ``peer`` keeps the direct
        messages with one node, ``channel`` the broadcasts of one channel."""
        clauses: list[str] = []
        args: list[object] = []
        if direction is not None:
            clauses.append("direction = ?")
            args.append(direction)
        if since is not None:
            clauses.append("time > ?")
            args.append(since)
        if peer is not None:
            clauses.append("kind = 'direct' AND peer = ?")
            args.append(peer)
        if channel is not None:
            clauses.append("kind = 'broadcast' AND COALESCE(channel, '') = ?")
            args.append(channel)
        where = " AND ".join(clauses) or "1"
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE {where}"
                " ORDER BY time DESC, rowid DESC LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [_message(row) for row in reversed(rows)]

    def unread_counts(self) -> dict[bytes, int]:
        with self._lock:
            rows = self._db.execute(
                "SELECT peer, COUNT(*) FROM messages WHERE direction = 'in' AND read = 0"
                " AND kind = 'direct' GROUP BY peer"
            ).fetchall()
        return {bytes(peer): int(count) for peer, count in rows}

    def unread_channels(self) -> dict[str, int]:
        """Unread received broadcasts per channel (``""``: the whole network)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT COALESCE(channel, ''), COUNT(*) FROM messages WHERE direction = 'in'"
                " AND read = 0 AND kind = 'broadcast' GROUP BY COALESCE(channel, '')"
            ).fetchall()
        return {str(channel): int(count) for channel, count in rows}

    def _select(
        self, where: str, args: tuple[object, ...] = (), *, limit: int = 100_000
    ) -> list[StoredMessage]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE {where} ORDER BY time, rowid LIMIT ?",
                (*args, limit),
            ).fetchall()
        return [_message(row) for row in rows]

    # ------------------------------------------------------------------ contacts and blocks

    def add_contact(self, node_key: bytes, name: str, now: float) -> None:
        with self._transaction() as db:
            db.execute(
                "INSERT INTO contacts (id, name, added) VALUES (?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                (node_key, name, now),
            )

    def remove_contact(self, node_key: bytes) -> bool:
        with self._transaction() as db:
            return db.execute("DELETE FROM contacts WHERE id = ?", (node_key,)).rowcount == 1

    def contacts(self) -> list[Contact]:
        with self._lock:
            rows = self._db.execute("SELECT id, name, added FROM contacts ORDER BY name").fetchall()
        return [Contact(bytes(row[0]), row[1], row[2]) for row in rows]

    def block(self, node_key: bytes, now: float) -> None:
        with self._transaction() as db:
            db.execute("INSERT OR IGNORE INTO blocked (id, added) VALUES (?, ?)", (node_key, now))

    def unblock(self, node_key: bytes) -> bool:
        with self._transaction() as db:
            return db.execute("DELETE FROM blocked WHERE id = ?", (node_key,)).rowcount == 1

    def blocked(self) -> set[bytes]:
        with self._lock:
            rows = self._db.execute("SELECT id FROM blocked").fetchall()
        return {bytes(row[0]) for row in rows}

    # ------------------------------------------------------------------ channels

    def follow_channel(self, name: str, now: float) -> bool:
        """Keep (and relay) broadcast channel ``name`` from now on; whether it is new."""
        with self._transaction() as db:
            return (
                db.execute(
                    "INSERT OR IGNORE INTO channels (name, added) VALUES (?, ?)", (name, now)
                ).rowcount
                == 1
            )

    def unfollow_channel(self, name: str) -> bool:
        with self._transaction() as db:
            return db.execute("DELETE FROM channels WHERE name = ?", (name,)).rowcount == 1

    def followed_channels(self) -> list[str]:
        with self._lock:
            rows = self._db.execute("SELECT name FROM channels ORDER BY name").fetchall()
        return [str(row[0]) for row in rows]

    # ------------------------------------------------------------------ counters

    def next_counter(self, name: str) -> int:
        """A strictly increasing number that survives restarts (gossip sequence numbers)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO counters (name, value) VALUES (?, 1)"
                " ON CONFLICT (name) DO UPDATE SET value = value + 1",
                (name,),
            )
            row = db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0])


def _message(row: tuple[Any, ...]) -> StoredMessage:
    (ident, direction, kind, peer, channel, text, time, received, delivered, failed,
     attempts, next_attempt, last_error, read) = row  # fmt: skip
    return StoredMessage(
        id=bytes(ident),
        direction=str(direction),
        kind=str(kind),
        peer=bytes(peer),
        channel=channel,
        text=str(text),
        time=float(time),
        received=received,
        delivered=delivered,
        failed=failed,
        attempts=int(attempts),
        next_attempt=float(next_attempt),
        last_error=last_error,
        read=bool(read),
    )
