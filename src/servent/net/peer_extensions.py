"""BEP 10 extensions inside a running torrent: ``ut_metadata`` serving and ``ut_pex``.

Kept out of :mod:`servent.net.torrent_session` (which owns pieces and peers)
so the extension traffic of a torrent lives in one place: the torrent session
hands over extension events and calls :meth:`TorrentExtensions.tick`; this
module answers metadata requests from the sans-IO
:class:`~servent.proto.metadata_exchange.MetadataServer`, tells peers who we
are connected to and feeds the peers they tell us about into the torrent's
known-peer list with source ``"pex"``, with their flags (seed, prefers
encryption) as hints, and forgets what a peer ``dropped`` when only that peer
had told us of it (decision 0014).  Hostile input (a PEX flood, garbage,
an endless stream of metadata requests) costs the peer its connection, with
one warning in the log.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from servent.errors import ExtensionNotSupportedError, MetadataExchangeError, PexError
from servent.net.encrypted_transport import used_mse
from servent.net.known_peers import Address, KnownPeers
from servent.proto.metadata_exchange import (
    MSG_REQUEST,
    PIECE_SIZE,
    MetadataServer,
    decode_message,
    encode_reject,
)
from servent.proto.peerwire import ExtensionHandshakeReceived, ExtensionMessage
from servent.proto.pex import (
    FLAG_ENCRYPTION,
    FLAG_REACHABLE,
    FLAG_SEED,
    PexState,
)
from servent.proto.session_extensions import UT_METADATA, UT_PEX

if TYPE_CHECKING:
    from servent.net.swarm_peer import SwarmPeer

__all__ = ["TorrentExtensions"]

log = logging.getLogger(__name__)

#: Metadata pieces served per connection before further requests are refused:
#: a peer needs each piece once; a few retries are fair, an endless loop is not.
METADATA_REQUEST_ALLOWANCE = 4
#: Refused metadata requests tolerated before the peer is dropped.
METADATA_REJECT_ALLOWANCE = 64
#: Addresses remembered per peer, to forget them again if the peer turns out hostile.
MAX_REMEMBERED_PER_PEER = 500


class TorrentExtensions:
    """The extension side of one torrent session (see the module docstring)."""

    def __init__(
        self,
        info_bytes: bytes,
        *,
        add_peers: Callable[[Iterable[Address]], None],
        known: KnownPeers | None = None,
        is_own_address: Callable[[Address], bool] = lambda _address: False,
        pex: bool = True,
    ) -> None:
        self.metadata = MetadataServer(info_bytes)
        self._pieces = max(1, -(-len(info_bytes) // PIECE_SIZE))
        self._add_peers = add_peers
        self._known = known
        self._learnt_from: dict[SwarmPeer, set[Address]] = {}
        self._is_own_address = is_own_address
        self.pex_enabled = pex
        self._pex: dict[SwarmPeer, PexState] = {}
        self._metadata_served: dict[SwarmPeer, int] = {}
        self._metadata_refused: dict[SwarmPeer, int] = {}
        #: Metadata pieces sent to peers, in total (for statistics and tests).
        self.metadata_pieces_served = 0
        #: Addresses learnt through PEX (for statistics and tests).
        self.pex_learnt: set[Address] = set()
        #: Addresses heard of by PEX with the seed flag, in total (statistics and tests).
        self.pex_seed_flags = 0

    # ------------------------------------------------------------------ handshake

    def handshake_fields(self, peer_host: str | None = None) -> dict[str, object]:
        """Keys for our BEP 10 handshake besides ``m`` (which comes from the registry):
        ``metadata_size``, and ``yourip`` (the peer's address as we see it, which
        helps a peer behind NAT learn its external address)."""
        fields: dict[str, object] = {"metadata_size": self.metadata.metadata_size}
        if peer_host:
            with contextlib.suppress(ValueError):
                fields["yourip"] = ipaddress.ip_address(peer_host).packed
        return fields

    # ------------------------------------------------------------------ events

    def on_event(
        self, peer: SwarmPeer, event: ExtensionHandshakeReceived | ExtensionMessage, now: float
    ) -> None:
        if isinstance(event, ExtensionHandshakeReceived):
            if self.pex_enabled and UT_PEX in event.handshake.extensions:
                self._pex.setdefault(peer, PexState(now))
            return
        if event.name == UT_METADATA:
            self._on_metadata(peer, event.payload)
        elif event.name == UT_PEX:
            self._on_pex(peer, event.payload, now)

    def _on_metadata(self, peer: SwarmPeer, payload: bytes) -> None:
        session = peer.session
        try:
            message = decode_message(payload)
            if message.msg_type != MSG_REQUEST:
                return  # data/reject for a fetch we never started: ignore
            served = self._metadata_served.get(peer, 0)
            if served >= METADATA_REQUEST_ALLOWANCE * self._pieces:
                refused = self._metadata_refused.get(peer, 0) + 1
                self._metadata_refused[peer] = refused
                if refused > METADATA_REJECT_ALLOWANCE:
                    raise MetadataExchangeError(f"ut_metadata request flood ({served} served)")
                reply: bytes | None = encode_reject(message.piece)
            else:
                reply = self.metadata.handle(payload)
                self._metadata_served[peer] = served + 1
                self.metadata_pieces_served += 1
        except MetadataExchangeError as exc:
            log.warning("peer %s: bad ut_metadata message (%s); dropping it", peer.label, exc)
            session.close(f"bad ut_metadata message: {exc}")
            return
        if reply is None:
            return
        try:
            session.conn.send_extension(UT_METADATA, reply)
        except ExtensionNotSupportedError:
            log.info("peer %s asks for metadata but announced no ut_metadata id", peer.label)
            session.close("ut_metadata request without ut_metadata in its handshake")

    def _on_pex(self, peer: SwarmPeer, payload: bytes, now: float) -> None:
        if not self.pex_enabled:
            return
        state = self._pex.get(peer)
        if state is None:
            state = self._pex[peer] = PexState(now)
        try:
            message = state.receive(payload, now)
        except PexError as exc:
            log.warning("peer %s: refused ut_pex message (%s); dropping it", peer.label, exc)
            self._forget_learnt(peer)
            peer.session.close(f"bad ut_pex message: {exc}")
            return
        added = {
            address: flags
            for address, flags in message.added
            if address[1] != 0 and not self._is_own_address(address)
        }
        fresh = list(added)
        if fresh:
            log.debug("peer %s told us of %d peers by PEX", peer.label, len(fresh))
            self.pex_learnt.update(fresh)
            mine = self._learnt_from.setdefault(peer, set())
            if len(mine) < MAX_REMEMBERED_PER_PEER:
                mine.update(fresh[: MAX_REMEMBERED_PER_PEER - len(mine)])
            self._add_peers(fresh)
            self.pex_seed_flags += sum(1 for flags in added.values() if flags & FLAG_SEED)
            if self._known is not None:
                for address, flags in added.items():
                    self._known.note_flags(
                        address,
                        seed=bool(flags & FLAG_SEED),
                        prefers_encryption=bool(flags & FLAG_ENCRYPTION),
                        reachable=bool(flags & FLAG_REACHABLE),
                    )
        if message.dropped:
            self._on_pex_dropped(peer, message.dropped)

    def _on_pex_dropped(self, peer: SwarmPeer, dropped: Iterable[Address]) -> None:
        """Forget addresses ``peer`` now says are gone, if only ``peer`` told us of them
        (by PEX), no connection to them exists and none ever worked: a peer may retract
        its own hearsay, never what a tracker, the user or another peer told us."""
        mine = self._learnt_from.get(peer)
        if not mine:
            return
        forgotten = 0
        for address in dropped:
            if address not in mine:
                continue
            mine.discard(address)
            if any(address in other for other in self._learnt_from.values()):
                continue  # another peer vouches for it too
            known = self._known
            entry = None if known is None else known.get(address)
            if entry is None or entry.source != "pex" or entry.busy or entry.ever_connected:
                continue
            assert known is not None
            known.remove(address)
            self.pex_learnt.discard(address)
            forgotten += 1
        if forgotten:
            log.debug("peer %s dropped %d peers it told us of by PEX", peer.label, forgotten)

    def _forget_learnt(self, peer: SwarmPeer) -> None:
        """Drop the addresses a hostile peer told us of that never proved themselves."""
        known = self._known
        for address in self._learnt_from.pop(peer, ()):
            entry = None if known is None else known.get(address)
            if entry is not None and not entry.busy and not entry.ever_connected:
                assert known is not None
                known.remove(address)
                self.pex_learnt.discard(address)

    def peer_closed(self, peer: SwarmPeer) -> None:
        self._pex.pop(peer, None)
        self._learnt_from.pop(peer, None)
        self._metadata_served.pop(peer, None)
        self._metadata_refused.pop(peer, None)

    # ------------------------------------------------------------------ PEX sending

    def tick(self, peers: Iterable[SwarmPeer], now: float) -> None:
        """Send due PEX messages (each peer at most once a minute, per :class:`PexState`)."""
        if not self._pex:
            return
        due = [(p, s) for p, s in self._pex.items() if s.next_timer() <= now and p.open]
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
                self._pex.pop(peer, None)


def pex_entry(peer: SwarmPeer) -> tuple[Address, int] | None:
    """The address other peers could dial this peer on, with its BEP 11 flags."""
    flags = FLAG_SEED if peer.has_all else 0
    if used_mse(peer.session):
        flags |= FLAG_ENCRYPTION
    if peer.dialled is not None:
        return peer.dialled, flags | FLAG_REACHABLE
    remote = peer.session.conn.remote_extensions
    port = None if remote is None else remote.listen_port
    if port is None:
        return None  # an incoming peer that did not say where it listens
    return (peer.session.address[0], port), flags
