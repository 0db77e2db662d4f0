"""BEP 10 extensions inside a running torrent: one handler per registered extension.

Kept out of :mod:`servent.net.torrent_session` (which owns pieces and peers)
so the extension traffic of a torrent lives in one place: the torrent session
hands over extension events and calls :meth:`TorrentExtensions.tick`; this
module builds a handler for every extension in the catalogue
(:mod:`servent.net.extension_points`) and routes each message to the handler
registered under its name.  The built-in extensions, ``ut_metadata`` serving
(:mod:`~servent.net.ut_metadata_serving`) and ``ut_pex``
(:mod:`~servent.net.ut_pex`) and ``ut_holepunch``
(:mod:`~servent.net.holepunch_peers`), register themselves when imported here.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from servent.net import holepunch_peers, node_peers, ut_metadata_serving, ut_pex
from servent.net.extension_points import (
    PEER_EXTENSIONS,
    ExtensionCatalogue,
    PeerExtension,
    TorrentContext,
)
from servent.net.known_peers import Address, KnownPeers
from servent.proto.peerwire import (
    ExtensionHandshakeReceived,
    ExtensionMessage,
    ExtensionRegistry,
)
from servent.proto.session_extensions import UT_METADATA, UT_PEX

if TYPE_CHECKING:
    from servent.net.node_routes import NodeRoutes
    from servent.net.swarm_peer import SwarmPeer
    from servent.proto.node_routes import NodeAdvert

__all__ = ["TorrentExtensions"]


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
        catalogue: ExtensionCatalogue = PEER_EXTENSIONS,
        registry: ExtensionRegistry | None = None,
        punch: Callable[[Address, str | None], None] | None = None,
        nodes: Callable[[], NodeRoutes | None] | None = None,
        dial_node: Callable[[Address, NodeAdvert], None] | None = None,
        resend_handshake: Callable[[SwarmPeer], None] | None = None,
    ) -> None:
        """``registry``: the (empty) id registry to fill, if the caller made it already."""
        context = TorrentContext(
            info_bytes,
            add_peers,
            private=not pex,
            known=known,
            is_own_address=is_own_address,
            punch=punch,
            nodes=nodes or (lambda: None),
            dial_node=dial_node,
            resend_handshake=resend_handshake,
        )
        #: Handlers by extension name, and the ids our connections announce for them.
        self.handlers, self.registry = catalogue.build(context, registry)

    def handler(self, name: str) -> PeerExtension | None:
        return self.handlers.get(name)

    def handshake_fields(self, peer_host: str | None = None) -> dict[str, object]:
        """Keys for our BEP 10 handshake besides ``m`` (which comes from the registry):
        every handler's fields, and ``yourip`` (the peer's address as we see it, which
        helps a peer behind NAT learn its external address)."""
        fields: dict[str, object] = {}
        for handler in self.handlers.values():
            fields.update(handler.handshake_fields())
        if peer_host:
            with contextlib.suppress(ValueError):
                fields["yourip"] = ipaddress.ip_address(peer_host).packed
        return fields

    def handshake_sent(self, peer: SwarmPeer, now: float) -> None:
        for handler in self.handlers.values():
            handler.handshake_sent(peer, now)

    def on_event(
        self, peer: SwarmPeer, event: ExtensionHandshakeReceived | ExtensionMessage, now: float
    ) -> None:
        if isinstance(event, ExtensionHandshakeReceived):
            for handler in self.handlers.values():
                handler.on_handshake(peer, event.handshake, now)
            return
        receiver = self.handlers.get(event.name)
        if receiver is not None:
            receiver.on_message(peer, event.payload, now)

    def peer_closed(self, peer: SwarmPeer) -> None:
        for handler in self.handlers.values():
            handler.peer_closed(peer)

    def tick(self, peers: Sequence[SwarmPeer], now: float) -> None:
        for handler in self.handlers.values():
            handler.tick(peers, now)

    # -- figures of the built-in extensions (statistics and tests) -----------------

    @property
    def metadata_pieces_served(self) -> int:
        serving = self.handlers.get(UT_METADATA)
        if isinstance(serving, ut_metadata_serving.MetadataServing):
            return serving.pieces_served
        return 0

    @property
    def pex_learnt(self) -> set[Address]:
        pex = self.handlers.get(UT_PEX)
        return pex.learnt if isinstance(pex, ut_pex.PeerExchange) else set()

    @property
    def holepunch(self) -> holepunch_peers.HolePunching | None:
        punching = self.handlers.get("ut_holepunch")
        return punching if isinstance(punching, holepunch_peers.HolePunching) else None

    @property
    def node_peers(self) -> node_peers.NodePeers | None:
        nodes = self.handlers.get("sv_nodes")
        return nodes if isinstance(nodes, node_peers.NodePeers) else None

    @property
    def pex_seed_flags(self) -> int:
        pex = self.handlers.get(UT_PEX)
        return pex.seed_flags if isinstance(pex, ut_pex.PeerExchange) else 0
