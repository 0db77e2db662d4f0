"""Invite-only networks of a node: create, invite, join, revoke, leave; private shares,
search and broadcasts among members (``docs/networks.md``).

:class:`NetworkService` holds the rosters and epoch keys (``networks.sqlite3``),
answers ``servent/network/1`` requests of members (:mod:`.network_requests`)
and gives the engine the swarm key of every network torrent and checks
membership for it, so the peer wire of those torrents runs only over the
sealed wire between members (``net.sealed_stream``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servent.codec.node_id import format_node_id, parse_node_id
from servent.errors import NetworkError, NodeError, RosterError, ServentError
from servent.node.network_requests import NetworkRequests
from servent.node.network_store import NetworkShare, NetworkStore
from servent.node.network_wire import NetworkWire
from servent.proto.network import (
    Invitation,
    InviteRecord,
    Roster,
    rendezvous_hash,
    secret_digest,
    swarm_key,
)
from servent.proto.network.invitation import MAX_OTHER_ADMINS, MAX_USES
from servent.proto.network.sealed import WireIdentity

if TYPE_CHECKING:
    from servent.net.dht_driver import DhtDriver
    from servent.net.engine import SwarmEngine
    from servent.node.network_host import NetworkHost

__all__ = ["NetworkService", "parse_duration"]

Address = tuple[str, int]
#: A change of the roster, made again on another roster (raises RosterError if it cannot).
Change = Callable[[Roster], Roster]

log = logging.getLogger(__name__)

#: When the first rendezvous round runs after start, and then how often.
RENDEZVOUS_FIRST = 20.0
RENDEZVOUS_INTERVAL = 600.0
RENDEZVOUS_DIAL = 10.0
_DURATION = re.compile(r"^\s*(\d{1,9})\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """Seconds of ``30s``, ``15m``, ``2h``, ``7d`` (a bare number is seconds)."""
    found = _DURATION.match(text.lower())
    if found is None or int(found[1]) == 0:
        raise NetworkError(f"a duration is a positive number with s, m, h or d, not {text!r}")
    return int(found[1]) * _UNITS[found[2]]


class NetworkService(NetworkRequests):
    """The networks part of a node (see the module doc)."""

    def __init__(
        self,
        node: NetworkHost,
        swarm: Callable[[], SwarmEngine | None],
        dht: Callable[[], DhtDriver | None],
    ) -> None:
        self.node = node
        self._swarm = swarm
        self._dht = dht
        self.store: NetworkStore | None = None
        self.rosters: dict[bytes, Roster] = {}
        self.keys: dict[tuple[bytes, int], bytes] = {}
        self.shares: dict[bytes, NetworkShare] = {}
        self.addresses: dict[bytes, list[tuple[str, int]]] = {}
        #: The swarm key of a network torrent whose epoch key is missing: matches nobody.
        self._locked = os.urandom(20)
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Our last roster change per network: (its sequence, how to make it again).
        self._pending: dict[bytes, tuple[int, Change]] = {}

    # -- life -------------------------------------------------------------------------

    async def start(self) -> None:
        store = await asyncio.to_thread(NetworkStore, self.node.config.data_dir)
        self.store = store
        self.rosters = {r.network_id: r for r in store.rosters()}
        self.keys = store.keys()
        self.shares = {s.info_hash: s for s in store.shares()}
        self.addresses = {m: _addresses(a) for m, a in store.addresses().items()}
        self._hook_engine()
        try:
            channels = self.node.channels
        except NodeError:
            return
        NetworkWire(channels, self.answer).register()
        self._spawn(self.greet_all())
        self._spawn(self._meet_now_and_then())

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.store is not None:
            store, self.store = self.store, None
            store.close()

    async def _meet_now_and_then(self) -> None:
        await asyncio.sleep(RENDEZVOUS_FIRST)  # the DHT bootstraps meanwhile
        while True:
            try:
                await self.meet()
            except Exception as exc:  # a DHT hiccup: the next round tries again
                log.debug("network rendezvous failed: %s", exc)
            await asyncio.sleep(RENDEZVOUS_INTERVAL)

    async def meet(self) -> int:
        """One rendezvous round (``docs/networks.md`` section 7): announce our port under
        each network's rendezvous hash and greet the members found there."""
        dht = self._dht()
        own = self.node.peer_address()
        if dht is None or own is None:
            return 0
        day = int(time.time() // 86400)
        greeted = 0
        for roster in list(self.rosters.values()):
            key = self.current_key(roster.network_id)
            if key is None:
                continue
            done = await dht.announce(rendezvous_hash(key, roster.network_id, day), own[1])
            for address in dict.fromkeys(done.peers):
                if address != own and await self._greet_at(roster.network_id, address):
                    greeted += 1
        return greeted

    async def _greet_at(self, network: bytes, address: tuple[str, int]) -> bool:
        """Dial an address met at the rendezvous; greet it when it is a member."""
        try:
            async with asyncio.timeout(RENDEZVOUS_DIAL):
                channel = await self.node.channels.dial(*address)
        except (TimeoutError, OSError, ServentError):
            return False
        roster = self.rosters.get(network)
        peer = channel.peer_key
        if roster is None or peer is None or peer == self.own_key or not roster.is_member(peer):
            return False  # not ours to greet; the channel closes when idle
        self.addresses.pop(peer, None)  # what the rendezvous says is the newest
        self.remember_addresses(peer, [address])
        return await self.greet(network, peer)

    def _hook_engine(self) -> None:
        swarm = self._swarm()
        if swarm is not None:
            swarm.dialer.network = self
            if swarm.listener is not None:
                swarm.listener.network = self

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def db(self) -> NetworkStore:
        if self.store is None:
            raise NodeError("the node is not started")
        return self.store

    @property
    def own_key(self) -> bytes:
        return self.node.identity.public_key

    # -- what the engine and search ask ----------------------------------------------------

    def swarm_key(self, info_hash: bytes) -> bytes | None:
        """The swarm key of a network torrent (never None for one: a missing key locks it)."""
        share = self.shares.get(info_hash[:20])
        if share is None:
            return None
        roster = self.rosters.get(share.network)
        key = None if roster is None else self.keys.get((share.network, roster.epoch))
        return self._locked if key is None else swarm_key(key, info_hash[:20])

    def held_swarm_keys(self) -> list[tuple[bytes, bytes]]:
        """``(info_hash20, swarm key)`` of every network torrent whose current key we hold:
        what an incoming sealed handshake may match (an old epoch's key matches nothing)."""
        held = []
        for info_hash, share in self.shares.items():
            key = self.current_key(share.network)
            if key is not None:
                held.append((info_hash, swarm_key(key, info_hash)))
        return held

    def admits(self, info_hash: bytes, node_key: bytes) -> bool:
        """Whether ``node_key`` is a member (not revoked) of that torrent's network."""
        share = self.shares.get(info_hash[:20])
        roster = None if share is None else self.rosters.get(share.network)
        return roster is not None and roster.is_member(node_key)

    @property
    def wire_identity(self) -> WireIdentity:
        identity = self.node.identity
        return WireIdentity(identity.public_key, identity.sign)

    def is_network_torrent(self, info_hash: bytes) -> bool:
        return info_hash[:20] in self.shares

    def current_key(self, network: bytes) -> bytes | None:
        roster = self.rosters.get(network)
        return None if roster is None else self.keys.get((network, roster.epoch))

    # -- the face ---------------------------------------------------------------------------

    def by_name(self, name: str) -> Roster:
        for roster in self.rosters.values():
            if roster.name == name or roster.network_id.hex() == name.lower():
                return roster
        raise NetworkError(f"no network named {name!r} (servent network list)")

    def describe(self, roster: Roster) -> dict[str, Any]:
        return {
            "id": roster.network_id.hex(), "name": roster.name, "epoch": roster.epoch,
            "sequence": roster.sequence, "members": len(roster.members),
            "admin": roster.is_admin(self.own_key),
        }  # fmt: skip

    def networks(self) -> list[dict[str, Any]]:
        return [self.describe(r) for r in sorted(self.rosters.values(), key=lambda r: r.name)]

    def create(self, name: str) -> dict[str, Any]:
        if any(r.name == name for r in self.rosters.values()):
            raise NetworkError(f"a network named {name!r} exists already")
        first = Roster.first(self.own_key, os.urandom(16), name, int(time.time()),
                             self.node.config.name or "")  # fmt: skip
        roster = first.signed(self.own_key, self.node.identity.sign)
        self.adopt(roster, (1, os.urandom(32)))
        return self.describe(roster)

    def invite(self, name: str, uses: int = 1, expires_in: int | None = None) -> dict[str, Any]:
        roster = self.by_name(name)
        if not roster.is_admin(self.own_key):
            raise NetworkError("only an admin of the network may invite")
        if not 1 <= uses <= MAX_USES:
            raise NetworkError(f"uses is 1..{MAX_USES}")
        address = self.node.peer_address()
        now = int(time.time())
        expires = 0 if expires_in is None else now + expires_in
        invitation = Invitation(
            roster.network_id, roster.name, self.own_key, (address,) if address else (),
            os.urandom(16), os.urandom(16), expires, self._other_admins(roster),
        )  # fmt: skip
        digest = secret_digest(invitation.secret)
        record = InviteRecord(invitation.invite_id, roster.network_id, digest, uses, expires)
        self._sign_and_spread(roster.with_invite(record, now),
                              lambda held: held.with_invite(record, now))  # fmt: skip
        return {"invite": invitation.text(), "uses": uses, "expires": expires or None}

    def _other_admins(self, roster: Roster) -> tuple[tuple[bytes, tuple[Address, ...]], ...]:
        """The admins a joiner may try when this one is offline (those with known addresses
        first): they hold the invitation's accounting in the roster too."""
        others = [m.key for m in roster.members if m.admin and m.key != self.own_key]
        others.sort(key=lambda k: k not in self.addresses)
        return tuple((k, tuple(self.addresses.get(k, [])[:2])) for k in others[:MAX_OTHER_ADMINS])

    def _sign_and_spread(self, roster: Roster, redo: Change, *, greet: bool = True) -> Roster:
        """Sign a change of ours, hold it, and greet every member with it.  ``redo`` makes
        the same change on another roster, should ours lose to one of equal sequence."""
        signed = roster.signed(self.own_key, self.node.identity.sign)
        before = self.rosters.get(signed.network_id)
        rotated = before is None or signed.epoch > before.epoch  # a revocation: a new key
        self.adopt(signed, (signed.epoch, os.urandom(32)) if rotated else None)
        self._pending[signed.network_id] = (signed.sequence, redo)
        if greet:
            self._spawn(self.greet_all(signed.network_id))
        return signed

    def redo_lost(self, held: Roster, winner: Roster) -> None:
        """Another admin's roster of the same sequence beat our change (section 4): make
        our change again on top of it, so a promotion, an invitation or an admission made
        at the same moment as another admin's is not lost."""
        pending = self._pending.pop(winner.network_id, None)
        if pending is None or held.signer != self.own_key:
            return
        sequence, redo = pending
        if held.sequence != sequence or winner.sequence != sequence:
            return  # ours was taken (a later roster builds on it), or we cannot tell
        if not winner.is_admin(self.own_key):
            return
        try:
            changed = redo(winner)
        except RosterError as exc:
            log.info("a change lost to another admin's could not be made again: %s", exc)
            return
        self._sign_and_spread(changed, redo)

    async def set_admin(self, name: str, member_id: str, admin: bool) -> dict[str, Any]:
        """Promote (``admin``) or demote a member; admins only (section 4.1)."""
        roster = self.by_name(name)
        if not roster.is_admin(self.own_key):
            raise NetworkError("only an admin of the network may promote or demote")
        member, now = parse_node_id(member_id), int(time.time())
        changed = roster.with_admin(member, admin, now)
        redo: Change = lambda held: held.with_admin(member, admin, now)  # noqa: E731
        return self.describe(self._sign_and_spread(changed, redo))

    def members(self, name: str) -> list[dict[str, Any]]:
        roster = self.by_name(name)
        channels = self._channels()
        return [
            {
                "id": format_node_id(m.key),
                "name": m.name,
                "admin": m.admin,
                "you": m.key == self.own_key,
                "connected": channels is not None and channels.channel_to(m.key) is not None,
            }
            for m in roster.members
        ]

    async def revoke(self, name: str, member_id: str) -> dict[str, Any]:
        roster = self.by_name(name)
        if not roster.is_admin(self.own_key):
            raise NetworkError("only an admin of the network may revoke a member")
        member, now = parse_node_id(member_id), int(time.time())
        redo: Change = lambda held: held.without_member(member, now)  # noqa: E731
        signed = self._sign_and_spread(roster.without_member(member, now), redo, greet=False)
        channels = self._channels()
        channel = None if channels is None else channels.channel_to(member)
        if channel is not None:
            channel.close(reason="revoked")
        await self.greet_all(signed.network_id)
        return self.describe(signed)

    async def leave(self, name: str) -> dict[str, Any]:
        roster = self.by_name(name)
        await asyncio.to_thread(self.db.forget, roster.network_id)
        del self.rosters[roster.network_id]
        self.keys = {k: v for k, v in self.keys.items() if k[0] != roster.network_id}
        return {"left": roster.name, "id": roster.network_id.hex()}

    async def share(self, name: str, path: str) -> dict[str, Any]:
        """Share ``path`` with the members only: a private torrent under the swarm key."""
        roster = self.by_name(name)

        def register(info_hash: bytes, torrent_name: str, size: int) -> None:
            share = NetworkShare(info_hash[:20], roster.network_id, torrent_name, size, own=True)
            self.db.put_share(share)
            self.shares[share.info_hash] = share

        result = await self.node.share(path, network=register)
        status = self.node.torrent(result.id)
        if not self.is_network_torrent(bytes.fromhex(status.info_hash_v1 or result.id)):
            raise NetworkError(f"{result.path} is shared publicly already: remove that first")
        return {"id": result.id, "path": result.path, "magnet": result.magnet,
                "existing": result.existing, "network": roster.name}  # fmt: skip

    def _channels(self) -> Any:
        try:
            return self.node.channels
        except NodeError:
            return None

    def remember_addresses(self, member: bytes, addresses: list[tuple[str, int]]) -> None:
        if addresses and self.addresses.get(member) != addresses:
            self.addresses[member] = addresses[:8]
            self.db.put_addresses(member, ",".join(f"{h}|{p}" for h, p in addresses[:8]))


def _addresses(text: str) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    for item in text.split(","):
        host, _, port = item.rpartition("|")
        if host and port.isdigit():
            found.append((host, int(port)))
    return found


def folder_of(path: str) -> Path:
    return Path(path).expanduser().resolve()
