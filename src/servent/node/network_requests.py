"""What members ask each other over ``servent/network/1``, both ends (a mixin of
:class:`~servent.node.networks.NetworkService`; ``docs/networks.md`` sections 4-7).

Every request from another node is answered only when the channel's
authenticated peer is a member of the roster held; anyone else gets
``not allowed`` and nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from servent.codec.magnet import Magnet
from servent.codec.node_id import format_node_id
from servent.errors import NetworkError, RosterError, ServentError
from servent.node.events import NetworkMemberJoined, NetworkMemberRevoked
from servent.node.message_store import StoredMessage
from servent.node.network_store import NetworkShare
from servent.node.network_wire import NOT_ALLOWED, ask
from servent.proto.network import (
    BroadcastFrame,
    Frame,
    Hello,
    Invitation,
    Join,
    KeyAsk,
    KeyGiven,
    Ok,
    Query,
    Refusal,
    Result,
    Results,
    Roster,
    Welcome,
    check_redeem,
    check_successor,
    decode_roster,
    membership_proof,
    parse_invitation,
    proof_matches,
)
from servent.proto.network.roster import prefers
from servent.proto.search import matches

if TYPE_CHECKING:
    from servent.node.network_host import NetworkHost
    from servent.node.network_store import NetworkStore

__all__ = ["NetworkRequests"]

log = logging.getLogger(__name__)

GREET_TIMEOUT = 10.0
Address = tuple[str, int]


class NetworkRequests:
    """Rosters in and out, keys handed to members, search and broadcasts among members."""

    node: NetworkHost
    rosters: dict[bytes, Roster]
    keys: dict[tuple[bytes, int], bytes]
    shares: dict[bytes, NetworkShare]
    addresses: dict[bytes, list[Address]]

    if TYPE_CHECKING:

        @property
        def db(self) -> NetworkStore: ...

        @property
        def own_key(self) -> bytes: ...

        def by_name(self, name: str) -> Roster: ...

        def describe(self, roster: Roster) -> dict[str, Any]: ...

        def current_key(self, network: bytes) -> bytes | None: ...

        def remember_addresses(self, member: bytes, addresses: list[Address]) -> None: ...

        def _spawn(self, work: Any) -> None: ...

        def redo_lost(self, held: Roster, winner: Roster) -> None: ...

        def _sign_and_spread(
            self, roster: Roster, redo: Callable[[Roster], Roster], *, greet: bool = True
        ) -> Roster: ...

    # -- the roster held ----------------------------------------------------------------

    def adopt(self, roster: Roster, key: tuple[int, bytes] | None = None) -> None:
        """Hold ``roster`` from now on (stored first), and tell the user who came and went."""
        before = self.rosters.get(roster.network_id)
        self.db.put_roster(roster, key)
        self.rosters[roster.network_id] = roster
        if key is not None:
            self.keys[(roster.network_id, key[0])] = key[1]
        if before is not None and roster.epoch > before.epoch:
            self._spawn(self._reconnect(roster.network_id))
        old = set() if before is None else {m.key for m in before.members}
        for member in roster.members:
            if member.key not in old and before is not None:
                self.node._emit_event(
                    NetworkMemberJoined(network=roster.name, member=format_node_id(member.key))
                )
        for revoked in set(roster.revoked) - set(() if before is None else before.revoked):
            self.node._emit_event(
                NetworkMemberRevoked(network=roster.name, member=format_node_id(revoked))
            )

    def _take_newer(self, raw: bytes) -> Roster | None:
        """A roster a member sent, adopted when it is a valid successor of the one held."""
        try:
            roster = decode_roster(raw)
            held = self.rosters.get(roster.network_id)
            if held is None:
                return None
            check_successor(held, roster)
        except RosterError as exc:
            log.debug("roster not taken: %s", exc)
            return None
        self.adopt(roster)
        tie = (roster.sequence, roster.epoch) == (held.sequence, held.epoch)
        if tie and roster.revoked != held.revoked:
            # two admins rotated the key at once: the key held may be the losing one's
            self.keys.pop((roster.network_id, roster.epoch), None)
            self._spawn(self._fetch_key(roster.network_id, roster.signer))
        self.redo_lost(held, roster)
        return roster

    def _member_roster(self, network: bytes, peer: bytes) -> Roster:
        roster = self.rosters.get(network)
        if roster is None or not roster.is_member(peer) or peer == self.own_key:
            raise NetworkError(NOT_ALLOWED)
        return roster

    def _own_addresses(self) -> list[Address]:
        address = self.node.peer_address()
        return [address] if address is not None else []

    # -- answering ----------------------------------------------------------------------------

    async def answer(self, peer: bytes, frame: Frame) -> Frame:
        """The answer to one request from node ``peer`` (authenticated by the channel)."""
        match frame:
            case Join():
                return self._on_join(peer, frame)
            case Hello():
                return self._on_hello(peer, frame)
            case KeyAsk():
                roster = self._member_roster(frame.network, peer)
                key = self.keys.get((frame.network, frame.epoch))
                if key is None or frame.epoch > roster.epoch:
                    return Refusal("no such epoch")
                return KeyGiven(frame.epoch, key)
            case Query():
                return self._on_query(peer, frame)
            case BroadcastFrame():
                return await self._on_broadcast(peer, frame)
            case _:
                return Refusal("unexpected request")

    def _on_join(self, peer: bytes, frame: Join) -> Frame:
        roster = self.rosters.get(frame.network)
        if roster is None or not roster.is_admin(self.own_key) or peer in roster.revoked:
            return Refusal(NOT_ALLOWED)
        key = self.current_key(frame.network)
        if key is None:
            return Refusal(NOT_ALLOWED)
        if not roster.is_member(peer):
            # check and count in one step (no await): the roster is the accounting
            record = roster.invite(frame.invite_id)
            reason = check_redeem(record, frame.network, frame.secret, time.time())
            if reason is not None:
                return Refusal(reason)
            invite_id, now = frame.invite_id, int(time.time())
            roster = self._sign_and_spread(
                roster.redeemed(invite_id, peer, now, frame.name),
                lambda held: held.redeemed(invite_id, peer, now, frame.name),
                greet=False,  # below, once the joiner's addresses are known
            )
        self.remember_addresses(peer, list(frame.addresses))
        self._spawn(self.greet_all(frame.network, skip=peer))
        return Welcome(roster.encode(), roster.epoch, key)

    def _on_hello(self, peer: bytes, frame: Hello) -> Frame:
        self._take_newer(frame.roster)
        roster = self._member_roster(frame.network, peer)
        key = self.current_key(frame.network)
        if frame.epoch == roster.epoch and key is not None:
            pair = (peer, self.own_key)
            if not proof_matches(key, frame.network, roster.epoch, pair, frame.proof):
                return Refusal(NOT_ALLOWED)
        self.remember_addresses(peer, list(frame.addresses))
        self._learn_known(roster, frame)
        if key is None or frame.epoch > roster.epoch:
            self._spawn(self._fetch_key(frame.network, peer))
        return self._hello(roster, peer)

    def _hello(self, roster: Roster, peer: bytes) -> Hello:
        key = self.current_key(roster.network_id)
        proof = (
            bytes(32) if key is None
            else membership_proof(key, roster.network_id, roster.epoch, self.own_key, peer)
        )  # fmt: skip
        known = tuple(
            (m.key, tuple(self.addresses[m.key]))
            for m in roster.members
            if m.key in self.addresses and m.key != peer
        )
        return Hello(roster.network_id, roster.encode(), roster.epoch, proof,
                     tuple(self._own_addresses()), known)  # fmt: skip

    def _learn_known(self, roster: Roster, hello: Hello) -> None:
        """Addresses of other members, from a member: kept when none is known yet (a
        wrong one costs only a failed dial: channels check the key they reach)."""
        for key, addresses in hello.known:
            if key != self.own_key and roster.is_member(key) and key not in self.addresses:
                self.remember_addresses(key, list(addresses))

    def _on_query(self, peer: bytes, frame: Query) -> Frame:
        self._member_roster(frame.network, peer)
        address = self.node.peer_address()
        if address is None:
            return Results(())
        found = [
            Result(s.info_hash, s.name, s.size, address, self.own_key)
            for s in self.shares.values()
            if s.own and s.network == frame.network and matches(frame.text, [s.name])
        ]
        return Results(tuple(found[: frame.limit]))

    async def _on_broadcast(self, peer: bytes, frame: BroadcastFrame) -> Frame:
        roster = self._member_roster(frame.network, peer)
        now = time.time()
        message = StoredMessage(
            id=frame.message_id, direction="in", kind="broadcast", peer=peer,
            channel=f"network:{roster.name}", text=frame.text, time=float(frame.time),
            received=now,
        )  # fmt: skip
        await self._keep_message(message)
        return Ok()

    async def _keep_message(self, message: StoredMessage) -> None:
        try:
            messenger = self.node.messenger
        except ServentError:  # messaging off: nothing to keep it in
            return
        if await asyncio.to_thread(messenger.store.receive, message):
            messenger.announce(message)

    # -- asking -------------------------------------------------------------------------------

    async def join(self, token: str) -> dict[str, Any]:
        invitation = parse_invitation(token)
        if any(r.name == invitation.name and r.network_id != invitation.network_id
               for r in self.rosters.values()):  # fmt: skip
            raise NetworkError(f"this node is in another network named {invitation.name!r}")
        frame = Join(invitation.network_id, invitation.invite_id, invitation.secret,
                     tuple(self._own_addresses()), self.node.config.name or "")  # fmt: skip
        admin, answer = await self._ask_admins(invitation, frame)
        if isinstance(answer, Refusal):
            raise NetworkError(f"the admin refused: {answer.reason}")
        if not isinstance(answer, Welcome):
            raise NetworkError("the admin answered something else than a welcome")
        roster = decode_roster(answer.roster)
        if roster.network_id != invitation.network_id or not roster.is_member(self.own_key):
            raise NetworkError("the admin's roster is not of this network or does not list us")
        if not roster.is_admin(admin) or answer.epoch != roster.epoch:
            raise NetworkError("the admin's roster does not match its invitation")
        if any(r.name == roster.name and r.network_id != roster.network_id
               for r in self.rosters.values()):  # fmt: skip
            raise NetworkError(f"this node is in another network named {roster.name!r}")
        held = self.rosters.get(roster.network_id)
        if held is None or prefers(roster, held):
            self.adopt(roster, (answer.epoch, answer.key))
        await self.greet(roster.network_id, admin)  # learns where the others are
        self._spawn(self.greet_all(roster.network_id, skip=admin))
        return self.describe(self.rosters[roster.network_id])

    async def _ask_admins(self, invitation: Invitation, frame: Join) -> tuple[bytes, Frame]:
        """Send ``join`` to the issuing admin, then (unreachable, or no admin any more) to
        the token's other admins in turn: any admin holding the roster may admit (section 4)."""
        tried: list[str] = []
        refused: tuple[bytes, Frame] | None = None
        for admin, addresses in ((invitation.admin, invitation.addresses), *invitation.others):
            try:
                answer = await ask(self.node.channels, admin, frame, addresses=addresses)
            except NetworkError as exc:  # offline: the next admin may answer
                tried.append(str(exc))
                continue
            self.remember_addresses(admin, list(addresses))
            if answer != Refusal(NOT_ALLOWED):
                return admin, answer
            refused = refused or (admin, answer)  # demoted since it issued it, or we are out
        if refused is not None:
            return refused
        raise NetworkError(f"no admin of the invitation could be reached ({'; '.join(tried)})")

    async def greet_all(self, network: bytes | None = None, *, skip: bytes | None = None) -> None:
        """Say hello to every member (of one network): rosters and keys spread this way."""
        targets = [
            (roster.network_id, m.key)
            for roster in list(self.rosters.values())
            if network is None or roster.network_id == network
            for m in roster.members
            if m.key not in (self.own_key, skip)
        ]
        await asyncio.gather(*(self.greet(n, k) for n, k in targets))

    async def greet(self, network: bytes, member: bytes) -> bool:
        roster = self.rosters.get(network)
        if roster is None:
            return False
        try:
            answer = await ask(
                self.node.channels,
                member,
                self._hello(roster, member),
                addresses=self.addresses.get(member, ()),
                within=GREET_TIMEOUT,
            )
        except Exception as exc:  # an absent member is normal
            log.debug("hello to %s failed: %s", format_node_id(member), exc)
            return False
        if not isinstance(answer, Hello) or answer.network != network:
            return False
        newer = self._take_newer(answer.roster)
        held = newer or self.rosters.get(network)
        if held is not None and held.is_member(member):
            self.remember_addresses(member, list(answer.addresses))
            self._learn_known(held, answer)
            if self.current_key(network) is None:
                await self._fetch_key(network, member)
        return True

    async def _fetch_key(self, network: bytes, member: bytes) -> None:
        roster = self.rosters.get(network)
        if roster is None or self.current_key(network) is not None:
            return
        try:
            answer = await ask(
                self.node.channels,
                member,
                KeyAsk(network, roster.epoch),
                addresses=self.addresses.get(member, ()),
                within=GREET_TIMEOUT,
            )
        except NetworkError:
            return
        if isinstance(answer, KeyGiven) and answer.epoch == roster.epoch:
            self.db.put_key(network, answer.epoch, answer.key)
            self.keys[(network, answer.epoch)] = answer.key
            await self._reconnect(network)

    async def _reconnect(self, network: bytes) -> None:
        """A new key epoch: every running torrent of the network drops its peers and dials
        again, so a connection of a revoked member does not outlive the revocation."""
        for share in [s for s in self.shares.values() if s.network == network]:
            torrent_id = share.info_hash.hex()
            try:
                if self.node.torrent(torrent_id).state == "paused":
                    continue
                await self.node.reconnect_torrent(torrent_id)
            except ServentError:
                continue  # not (or no longer) a torrent of this node

    async def search(
        self, name: str, text: str, limit: int = 50, within: float = 5.0
    ) -> list[dict[str, Any]]:
        """Ask every member for its network shares matching ``text``."""
        roster = self.by_name(name)
        others = [m.key for m in roster.members if m.key != self.own_key]
        answers = await asyncio.gather(*(
            ask(self.node.channels, k, Query(roster.network_id, text, limit),
                addresses=self.addresses.get(k, ()), within=within)
            for k in others
        ), return_exceptions=True)  # fmt: skip
        found: dict[bytes, dict[str, Any]] = {}
        for member, answer in zip(others, answers, strict=True):
            if not isinstance(answer, Results):
                continue
            for result in answer.results:
                if result.publisher != member or not matches(text, [result.name]):
                    continue  # a member answers for its own shares only
                self._learn_share(roster, result)
                entry = found.get(result.info_hash)
                if entry is None:
                    found[result.info_hash] = _record(result)
                else:
                    entry["peers"].append(_peer(result.address))
                    entry["sources"] = len(entry["peers"])
        return list(found.values())[:limit]

    def _learn_share(self, roster: Roster, result: Result) -> None:
        if result.info_hash not in self.shares:
            share = NetworkShare(result.info_hash, roster.network_id, result.name, result.size,
                                 own=False)  # fmt: skip
            self.db.put_share(share)
            self.shares[result.info_hash] = share

    async def broadcast(self, name: str, text: str) -> dict[str, Any]:
        roster = self.by_name(name)
        if not text or len(text.encode()) > 65_536:
            raise NetworkError("a broadcast is 1..65,536 bytes of text")
        now = time.time()
        frame = BroadcastFrame(roster.network_id, os.urandom(16), int(now), text)
        others = [m.key for m in roster.members if m.key != self.own_key]
        answers = await asyncio.gather(*(
            ask(self.node.channels, k, frame, addresses=self.addresses.get(k, ()))
            for k in others
        ), return_exceptions=True)  # fmt: skip
        reached = sum(isinstance(a, Ok) for a in answers)
        await self._keep_message(StoredMessage(
            id=frame.message_id, direction="out", kind="broadcast", peer=self.own_key,
            channel=f"network:{roster.name}", text=text, time=now, received=now, delivered=now,
        ))  # fmt: skip
        return {"id": frame.message_id.hex(), "network": roster.name, "reached": reached,
                "members": len(others)}  # fmt: skip


def _record(result: Result) -> dict[str, Any]:
    magnet = Magnet(result.info_hash, None, display_name=result.name, peers=(result.address,))
    return {
        "name": result.name, "infohash": result.info_hash.hex(), "size": result.size,
        "magnet": magnet.to_uri(), "peers": [_peer(result.address)],
        "publisher": format_node_id(result.publisher), "sources": 1,
    }  # fmt: skip


def _peer(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
