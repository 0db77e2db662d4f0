"""BEP 10 ``sv_nodes`` inside a running torrent: which torrent peers are nodes (``docs/relay.md``).

We put our node's advert (key, relays, symmetric NAT) in our handshake, and
send the handshake again to servent peers when the advert changes; as a
peer connected to several servent peers we tell each the others' adverts, by
the address PEX would give for them; as an end we remember what we hear and,
for an address our dials and BEP 55 could not reach, dial it as a node: a
``servent/peerwire/1`` stream of a channel to it (``TorrentContext.dial_node``)
by the rule of :class:`~servent.proto.node_routes.RelayAttempts`.  Other
clients ignore the key and the extension.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from servent.codec.bencode import BValue
from servent.errors import ExtensionNotSupportedError, NodeRoutesError
from servent.net.extension_points import PeerExtension, TorrentContext, peer_extension
from servent.net.known_peers import Address
from servent.net.ut_pex import pex_entry
from servent.proto.node_routes import (
    ADVERT_KEY,
    EXTENSION_NAME,
    AdvertUpdates,
    NodeAdvert,
    NodeEntry,
    NodesInflow,
    RelayAttempts,
    decode_nodes,
    encode_advert,
    encode_nodes,
    parse_advert,
)
from servent.proto.peerwire.extensions import ExtensionHandshake

if TYPE_CHECKING:
    from servent.net.swarm_peer import SwarmPeer

__all__ = ["NodePeers"]

log = logging.getLogger("servent.net.peer_extensions")  # extension traffic logs in one place

#: A peer is told the list at most this often (and only when it changed).
TELL_INTERVAL = 30.0
#: Addresses heard of per torrent (the oldest forgotten first).
MAX_HEARD = 256


class NodePeers(PeerExtension):
    """``sv_nodes`` for one torrent (see the module docstring)."""

    def __init__(self, torrent: TorrentContext) -> None:
        self._torrent = torrent
        self._adverts: dict[SwarmPeer, NodeAdvert] = {}
        self._speaks: set[SwarmPeer] = set()
        #: Peers that announced ``sv_nodes`` (whether or not they are nodes themselves).
        self._servent: set[SwarmPeer] = set()
        self._offered: NodeAdvert | None = None
        self._updates: AdvertUpdates[SwarmPeer] = AdvertUpdates()
        self._inflow: dict[SwarmPeer, NodesInflow] = {}
        self._told: dict[SwarmPeer, tuple[float, frozenset[NodeEntry]]] = {}
        #: Nodes other peers told us of, by the address their torrent peer listens on.
        self.heard: OrderedDict[Address, NodeAdvert] = OrderedDict()
        self._attempts: RelayAttempts | None = None
        #: Channel dials started (statistics and tests).
        self.node_dials = 0
        #: Handshakes sent again for a changed advert (statistics and tests).
        self.updates_sent = 0

    def handshake_fields(self) -> Mapping[str, BValue]:
        routes = self._torrent.nodes()
        own = self._offered = None if routes is None else routes.own()
        return {} if own is None else {ADVERT_KEY.decode(): encode_advert(own)}

    def handshake_sent(self, peer: SwarmPeer, now: float) -> None:
        self._updates.sent(peer, self._offered, now)

    def on_handshake(self, peer: SwarmPeer, handshake: ExtensionHandshake, now: float) -> None:
        if EXTENSION_NAME in handshake.extensions:
            self._servent.add(peer)
        else:
            self._servent.discard(peer)
        raw = handshake.fields.get(ADVERT_KEY)
        if raw is None:
            return
        try:
            advert = parse_advert(raw)
        except NodeRoutesError as exc:  # not a node for us; the connection goes on
            log.debug("peer %s: ignoring its sv_node advert (%s)", peer.label, exc)
            self._adverts.pop(peer, None)
            self._speaks.discard(peer)
            return
        self._adverts[peer] = advert  # a later handshake's advert replaces the earlier
        if peer in self._servent:
            self._speaks.add(peer)
        else:
            self._speaks.discard(peer)
        routes = self._torrent.nodes()
        entry = pex_entry(peer)
        if routes is not None and entry is not None:
            routes.remember(advert.key, entry[0])
        if peer.dialled is not None and self._attempts is not None:
            self._attempts.succeeded(peer.dialled)

    def on_message(self, peer: SwarmPeer, payload: bytes, now: float) -> None:
        inflow = self._inflow.get(peer)
        if inflow is None:
            inflow = self._inflow[peer] = NodesInflow(now)
        if not inflow.admit(now):
            if inflow.abusive:
                log.warning("peer %s: sv_nodes flood; dropping it", peer.label)
                peer.session.close("sv_nodes flood")
            return  # beyond the bucket: ignored
        try:
            entries = decode_nodes(payload)
        except NodeRoutesError as exc:
            log.warning("peer %s: refused sv_nodes message (%s); dropping it", peer.label, exc)
            peer.session.close(f"bad sv_nodes message: {exc}")
            return
        log.debug("peer %s told us of %d nodes", peer.label, len(entries))
        routes = self._torrent.nodes()
        own = None if routes is None else routes.own()
        for entry in entries:
            if own is not None and entry.advert.key == own.key:
                continue
            if self._torrent.is_own_address(entry.address):
                continue
            self.heard[entry.address] = entry.advert
            self.heard.move_to_end(entry.address)
            if routes is not None:
                routes.remember(entry.advert.key, entry.address)
        while len(self.heard) > MAX_HEARD:
            self.heard.popitem(last=False)

    def peer_closed(self, peer: SwarmPeer) -> None:
        self._adverts.pop(peer, None)
        self._speaks.discard(peer)
        self._told.pop(peer, None)
        self._servent.discard(peer)
        self._updates.forget(peer)
        self._inflow.pop(peer, None)

    def tick(self, peers: Sequence[SwarmPeer], now: float) -> None:
        self._update(now)
        self._tell(peers, now)
        self._reach(peers, now)

    # -- as a node whose advert changed -------------------------------------------------

    def _update(self, now: float) -> None:
        """Our relays or NAT verdict changed: servent peers get our handshake again."""
        resend = self._torrent.resend_handshake
        if resend is None or not self._servent:
            return
        routes = self._torrent.nodes()
        own = None if routes is None else routes.own()
        for peer in self._updates.due([p for p in self._servent if p.open], own, now):
            self._updates.sent(peer, own, now)  # even if the send fails: no retry each tick
            try:
                resend(peer)
            except ExtensionNotSupportedError as exc:
                log.debug("peer %s: no handshake update (%s)", peer.label, exc)
                continue
            self.updates_sent += 1
            log.debug("peer %s: sent our changed advert", peer.label)
            peer.session.schedule_flush()

    # -- as the peer in the middle ------------------------------------------------------

    def _tell(self, peers: Sequence[SwarmPeer], now: float) -> None:
        nodes = {
            peer: NodeEntry(entry[0], advert)
            for peer in peers
            if peer.open
            and (advert := self._adverts.get(peer)) is not None
            and (entry := pex_entry(peer)) is not None
        }
        for peer in self._speaks:
            if not peer.open:
                continue
            others = frozenset(e for other, e in nodes.items() if other is not peer)
            told_at, told = self._told.get(peer, (float("-inf"), frozenset()))
            if others == told or now - told_at < TELL_INTERVAL:
                continue
            self._told[peer] = (now, others)
            try:
                peer.session.conn.send_extension(EXTENSION_NAME, encode_nodes(others))
            except (ExtensionNotSupportedError, NodeRoutesError) as exc:
                log.debug("peer %s: no sv_nodes sent (%s)", peer.label, exc)
                continue
            peer.session.schedule_flush()

    # -- as an end: reaching a peer as a node --------------------------------------------

    def _reach(self, peers: Sequence[SwarmPeer], now: float) -> None:
        torrent = self._torrent
        routes = torrent.nodes()
        own = None if routes is None else routes.own()
        if own is None or torrent.dial_node is None or torrent.known is None or not self.heard:
            return
        if self._attempts is None:
            self._attempts = RelayAttempts(own.key)
        attempts = self._attempts
        attempts.we_are_symmetric = own.symmetric
        connected = {p.dialled for p in peers} | {e[0] for p in peers if (e := pex_entry(p))}
        for address, advert in list(self.heard.items()):
            entry = torrent.known.get(address)
            if entry is None:
                torrent.add_peers([address])  # a direct dial first
                continue
            if entry.busy or address in connected:
                continue
            if not attempts.due(address, advert, entry.failures, now):
                continue
            attempts.started(address, now)
            self.node_dials += 1
            log.info("reaching %s:%d as a node (attempt %d)", *address,
                     attempts.attempts(address))  # fmt: skip
            torrent.dial_node(address, advert)


def _for_public_torrents(torrent: TorrentContext) -> NodePeers | None:
    """BEP 27: a private torrent's peers come from its tracker only."""
    return None if torrent.private else NodePeers(torrent)


peer_extension(EXTENSION_NAME)(_for_public_torrents)
