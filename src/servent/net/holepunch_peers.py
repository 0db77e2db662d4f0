"""BEP 55 ``ut_holepunch`` inside a running torrent: relaying rendezvous, punching on connect.

As the middle peer it answers a ``rendezvous`` by the rule of
:func:`servent.proto.holepunch.relay_rendezvous` (``connect`` to both, or an
error to the asker), at most :data:`RELAYS_PER_MINUTE` per asking peer.  As
an end it asks a connected peer that speaks the extension to introduce it
to a peer learnt by PEX that is not flagged reachable and that our own
dials failed to reach, and on ``connect`` it primes its NAT and dials over
uTP, and tries TCP simultaneous open (``TorrentContext.punch``).  When to
ask, and how long direct dials wait meanwhile, is the rule of
:class:`~servent.proto.rendezvous_schedule.RendezvousSchedule`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from servent.errors import ExtensionNotSupportedError
from servent.net.extension_points import PeerExtension, TorrentContext, peer_extension
from servent.net.known_peers import Address
from servent.net.ut_pex import pex_entry
from servent.proto.holepunch import (
    EXTENSION_NAME,
    ErrorCode,
    HolepunchError,
    HolepunchMessage,
    MessageType,
    PeerView,
    decode,
    encode,
    relay_rendezvous,
)
from servent.proto.peerwire.extensions import ExtensionHandshake
from servent.proto.rendezvous_schedule import RendezvousSchedule

if TYPE_CHECKING:
    from servent.net.swarm_peer import SwarmPeer

__all__ = ["HolePunching"]

log = logging.getLogger("servent.net.peer_extensions")  # extension traffic logs in one place

RELAYS_PER_MINUTE = 4


def seen_as(peer: SwarmPeer) -> str | None:
    """Our IP as ``peer`` sees it (its BEP 10 ``yourip``): our half of the endpoints that
    decide who initiates a TCP punch (decision 0048)."""
    remote = peer.session.conn.remote_extensions
    return None if remote is None else remote.your_ip


def listen_address(peer: SwarmPeer) -> Address | None:
    """Where the peer listens as we see it (the address a rendezvous names)."""
    entry = pex_entry(peer)
    return None if entry is None else entry[0]


class HolePunching(PeerExtension):
    """``ut_holepunch`` for one torrent (see the module docstring)."""

    def __init__(self, torrent: TorrentContext) -> None:
        self._torrent = torrent
        self._peers: list[SwarmPeer] = []
        self._supports: set[SwarmPeer] = set()
        self._schedule = RendezvousSchedule()
        self._relayed: dict[SwarmPeer, deque[float]] = {}
        #: Counters (statistics and tests).
        self.rendezvous_sent = 0
        self.connects = 0
        self.introductions = 0
        #: The last error codes relays answered (bounded).
        self.errors: deque[ErrorCode] = deque(maxlen=16)

    def on_handshake(self, peer: SwarmPeer, handshake: ExtensionHandshake, now: float) -> None:
        if EXTENSION_NAME in handshake.extensions:
            self._supports.add(peer)

    def peer_closed(self, peer: SwarmPeer) -> None:
        self._supports.discard(peer)
        self._relayed.pop(peer, None)

    def on_message(self, peer: SwarmPeer, payload: bytes, now: float) -> None:
        try:
            message = decode(payload)
        except HolepunchError as exc:
            log.warning("peer %s: refused ut_holepunch message (%s); dropping it", peer.label, exc)
            peer.session.close(f"bad ut_holepunch message: {exc}")
            return
        if message.type is MessageType.RENDEZVOUS:
            self._relay(peer, message.peer, now)
        elif message.type is MessageType.CONNECT:
            self.connects += 1
            log.info("peer %s introduces %s:%d; punching", peer.label, *message.peer)
            if self._torrent.punch is not None:
                self._torrent.punch(message.peer, seen_as(peer))
        else:
            self.errors.append(message.error)
            log.debug("peer %s: no rendezvous with %s (%s)", peer.label, message.peer,
                      message.error.name)  # fmt: skip

    def _relay(self, requester: SwarmPeer, target: Address, now: float) -> None:
        recent = self._relayed.setdefault(requester, deque())
        while recent and now - recent[0] > 60.0:
            recent.popleft()
        own = listen_address(requester)
        if own is None or len(recent) >= RELAYS_PER_MINUTE:
            return  # a relay must not become a port scanner's mirror
        recent.append(now)
        by_address = {a: p for p in self._peers if p.open and (a := listen_address(p)) is not None}

        def lookup(address: Address) -> PeerView | None:
            peer = by_address.get(address)
            return None if peer is None else PeerView(address, True, peer in self._supports)

        for receiver_address, message in relay_rendezvous(own, target, lookup):
            receiver = requester if receiver_address == own else by_address.get(receiver_address)
            if receiver is not None:
                self._send(receiver, message)
        self.introductions += 1

    def ask_rendezvous(self, relay: SwarmPeer, target: Address) -> None:
        """Ask ``relay`` to introduce us to ``target`` (the tick does this by itself)."""
        self.rendezvous_sent += 1
        self._send(relay, HolepunchMessage(MessageType.RENDEZVOUS, target))

    def supports(self, peer: SwarmPeer) -> bool:
        return peer in self._supports

    def _send(self, peer: SwarmPeer, message: HolepunchMessage) -> None:
        try:
            peer.session.conn.send_extension(EXTENSION_NAME, encode(message))
        except ExtensionNotSupportedError:
            self._supports.discard(peer)
            return
        peer.session.schedule_flush()

    def tick(self, peers: Sequence[SwarmPeer], now: float) -> None:
        """Remember the open peers; ask for a rendezvous with peers we cannot dial."""
        self._peers = list(peers)
        known = self._torrent.known
        relays = [p for p in peers if p.open and p in self._supports]
        if known is None or self._torrent.punch is None or not relays:
            return
        connected = {listen_address(p) for p in peers} | {p.dialled for p in peers}
        schedule = self._schedule
        for entry in known.entries():
            address = entry.address
            if entry.source != "pex" or entry.reachable or address in connected:
                continue
            if entry.busy:
                schedule.dialling(address, now)
                continue
            if entry.failures == 0:
                continue
            if schedule.due(address, now):
                schedule.asked(address, now)
                log.info("asking %s for a rendezvous with %s:%d", relays[0].label, *address)
                self.ask_rendezvous(relays[0], address)
            hold = schedule.hold_until(address, now)
            if hold is not None:
                known.defer(address, hold)


def _for_public_torrents(torrent: TorrentContext) -> HolePunching | None:
    """BEP 27: a private torrent's peers come from its tracker only."""
    return None if torrent.private else HolePunching(torrent)


peer_extension(EXTENSION_NAME)(_for_public_torrents)
