"""``ut_pex`` (BEP 11) inside a running torrent: telling and hearing who is connected.

Tells peers who we are connected to and feeds the peers they tell us about
into the torrent's known-peer list with source ``"pex"``, with their flags
(seed, prefers encryption, reachable) as hints, and forgets what a peer
``dropped`` when only that peer had told us of it (decision 0014).  A PEX
flood or garbage costs the peer its connection, with one warning in the log.
Private torrents (BEP 27) do not even announce it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from servent.errors import ExtensionNotSupportedError, PexError
from servent.net.encrypted_transport import used_mse
from servent.net.extension_points import PeerExtension, TorrentContext, peer_extension
from servent.net.known_peers import Address
from servent.proto.peerwire.extensions import ExtensionHandshake
from servent.proto.pex import FLAG_ENCRYPTION, FLAG_REACHABLE, FLAG_SEED, PexState
from servent.proto.session_extensions import UT_PEX

if TYPE_CHECKING:
    from servent.net.swarm_peer import SwarmPeer

__all__ = ["PeerExchange", "pex_entry"]

log = logging.getLogger("servent.net.peer_extensions")

#: Addresses remembered per peer, to forget them again if the peer turns out hostile.
MAX_REMEMBERED_PER_PEER = 500


def _for_public_torrents(torrent: TorrentContext) -> PeerExchange | None:
    return None if torrent.private else PeerExchange(torrent)


class PeerExchange(PeerExtension):
    """PEX for one torrent (see the module docstring)."""

    def __init__(self, torrent: TorrentContext) -> None:
        self._torrent = torrent
        self._states: dict[SwarmPeer, PexState] = {}
        self._learnt_from: dict[SwarmPeer, set[Address]] = {}
        #: Addresses learnt through PEX (for statistics and tests).
        self.learnt: set[Address] = set()
        #: Addresses heard of by PEX with the seed flag, in total (statistics and tests).
        self.seed_flags = 0

    def on_handshake(self, peer: SwarmPeer, handshake: ExtensionHandshake, now: float) -> None:
        if UT_PEX in handshake.extensions:
            self._states.setdefault(peer, PexState(now))

    def on_message(self, peer: SwarmPeer, payload: bytes, now: float) -> None:
        state = self._states.get(peer)
        if state is None:
            state = self._states[peer] = PexState(now)
        try:
            message = state.receive(payload, now)
        except PexError as exc:
            log.warning("peer %s: refused ut_pex message (%s); dropping it", peer.label, exc)
            self._forget_learnt(peer)
            peer.session.close(f"bad ut_pex message: {exc}")
            return
        own = self._torrent.is_own_address
        added = {a: flags for a, flags in message.added if a[1] != 0 and not own(a)}
        if added:
            self._learn(peer, added)
        if message.dropped:
            self._on_dropped(peer, message.dropped)

    def _learn(self, peer: SwarmPeer, added: dict[Address, int]) -> None:
        fresh = list(added)
        log.debug("peer %s told us of %d peers by PEX", peer.label, len(fresh))
        self.learnt.update(fresh)
        mine = self._learnt_from.setdefault(peer, set())
        if len(mine) < MAX_REMEMBERED_PER_PEER:
            mine.update(fresh[: MAX_REMEMBERED_PER_PEER - len(mine)])
        self._torrent.add_peers(fresh)
        self.seed_flags += sum(1 for flags in added.values() if flags & FLAG_SEED)
        known = self._torrent.known
        if known is not None:
            for address, flags in added.items():
                known.note_flags(
                    address,
                    seed=bool(flags & FLAG_SEED),
                    prefers_encryption=bool(flags & FLAG_ENCRYPTION),
                    reachable=bool(flags & FLAG_REACHABLE),
                )

    def _on_dropped(self, peer: SwarmPeer, dropped: Iterable[Address]) -> None:
        """Forget addresses ``peer`` now says are gone, if only ``peer`` told us of them
        (by PEX), no connection to them exists and none ever worked: a peer may retract
        its own hearsay, never what a tracker, the user or another peer told us."""
        mine = self._learnt_from.get(peer)
        if not mine:
            return
        forgotten = 0
        known = self._torrent.known
        for address in dropped:
            if address not in mine:
                continue
            mine.discard(address)
            if any(address in other for other in self._learnt_from.values()):
                continue  # another peer vouches for it too
            entry = None if known is None else known.get(address)
            if entry is None or entry.source != "pex" or entry.busy or entry.ever_connected:
                continue
            assert known is not None
            known.remove(address)
            self.learnt.discard(address)
            forgotten += 1
        if forgotten:
            log.debug("peer %s dropped %d peers it told us of by PEX", peer.label, forgotten)

    def _forget_learnt(self, peer: SwarmPeer) -> None:
        """Drop the addresses a hostile peer told us of that never proved themselves."""
        known = self._torrent.known
        for address in self._learnt_from.pop(peer, ()):
            entry = None if known is None else known.get(address)
            if entry is not None and not entry.busy and not entry.ever_connected:
                assert known is not None
                known.remove(address)
                self.learnt.discard(address)

    def peer_closed(self, peer: SwarmPeer) -> None:
        self._states.pop(peer, None)
        self._learnt_from.pop(peer, None)

    def tick(self, peers: Sequence[SwarmPeer], now: float) -> None:
        """Send due PEX messages (each peer at most once a minute, per :class:`PexState`)."""
        if not self._states:
            return
        due = [(p, s) for p, s in self._states.items() if s.next_timer() <= now and p.open]
        if not due:
            return
        connected = {
            peer: entry for peer in peers if peer.open and (entry := pex_entry(peer)) is not None
        }
        for peer, state in due:
            state.set_connected(entry for other, entry in connected.items() if other is not peer)
            payload = state.build_message(now)
            if payload is None:
                continue
            try:
                peer.session.conn.send_extension(UT_PEX, payload)
            except ExtensionNotSupportedError:
                self._states.pop(peer, None)


peer_extension(UT_PEX, local_id=1)(_for_public_torrents)


def pex_entry(peer: SwarmPeer) -> tuple[Address, int] | None:
    """The address other peers could dial this peer on, with its BEP 11 flags."""
    flags = FLAG_SEED if peer.has_all else 0
    if used_mse(peer.session):
        flags |= FLAG_ENCRYPTION
    if peer.dialled is not None:
        transport = peer.session.transport
        if transport is not None and transport.get_extra_info("transport") == "channel":
            return peer.dialled, flags  # reached as a node (docs/relay.md): not dialled
        return peer.dialled, flags | FLAG_REACHABLE
    remote = peer.session.conn.remote_extensions
    port = None if remote is None else remote.listen_port
    if port is None:
        return None  # an incoming peer that did not say where it listens
    return (peer.session.address[0], port), flags
