"""BEP 10 extensions as plug-ins: each registers a name, a handler factory and its ids.

A torrent session speaks every extension in :data:`PEER_EXTENSIONS`.  A new
extension is a new module with a :class:`PeerExtension` subclass decorated
with :func:`peer_extension`; the session builds one handler per torrent
(the factory may decline, e.g. PEX for a private torrent), announces its
name in the handshake ``m`` dictionary, adds its handshake fields, and hands
it the messages sent to that name.  Nothing in the session names an
extension.

Usage::

    @peer_extension("ut_example")
    class Example(PeerExtension):
        def __init__(self, torrent: TorrentContext) -> None: ...
        def on_message(self, peer, payload, now): ...
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from servent.codec.bencode import BValue
from servent.net.known_peers import Address, KnownPeers
from servent.proto.peerwire.extensions import ExtensionHandshake, ExtensionRegistry

if TYPE_CHECKING:
    from servent.net.node_routes import NodeRoutes
    from servent.net.swarm_peer import SwarmPeer
    from servent.proto.node_routes import NodeAdvert

__all__ = [
    "PEER_EXTENSIONS",
    "ExtensionCatalogue",
    "ExtensionSpec",
    "PeerExtension",
    "TorrentContext",
    "peer_extension",
]


def _not_own(_address: Address) -> bool:
    return False


def _no_routes() -> NodeRoutes | None:
    return None


@dataclass(frozen=True, slots=True)
class TorrentContext:
    """What a torrent offers its extensions."""

    info_bytes: bytes
    add_peers: Callable[[Iterable[Address]], None]
    #: BEP 27: a private torrent's peers come from its tracker only.
    private: bool = False
    known: KnownPeers | None = None
    is_own_address: Callable[[Address], bool] = field(default=_not_own)
    #: BEP 55 ``connect``: punch towards an address (uTP, TCP simultaneous open), given
    #: our IP as the introducing peer sees it (its ``yourip``, None if not sent).
    punch: Callable[[Address, str | None], None] | None = None
    #: The node's routes (``net/node_routes``), None when the node runs no channels.
    nodes: Callable[[], NodeRoutes | None] = field(default=_no_routes)
    #: Dial the torrent peer at an address as the node an advert names (``docs/relay.md``).
    dial_node: Callable[[Address, NodeAdvert], None] | None = None
    #: Send a peer our whole BEP 10 handshake again (BEP 10 allows it; ``docs/relay.md``).
    resend_handshake: Callable[[SwarmPeer], None] | None = None


class PeerExtension:
    """One extension's handler inside one torrent: every hook does nothing by default."""

    def handshake_fields(self) -> Mapping[str, BValue]:
        """Keys this extension adds to our BEP 10 handshake (besides ``m``)."""
        return {}

    def handshake_sent(self, peer: SwarmPeer, now: float) -> None:
        """Our handshake (with :meth:`handshake_fields`) went to ``peer``."""

    def on_handshake(self, peer: SwarmPeer, handshake: ExtensionHandshake, now: float) -> None:
        """The peer's extension handshake arrived (whether or not it names us); a later
        one (BEP 10 allows several) comes merged with the earlier ones."""

    def on_message(self, peer: SwarmPeer, payload: bytes, now: float) -> None:
        """The peer sent a message to this extension's name."""

    def tick(self, peers: Sequence[SwarmPeer], now: float) -> None:
        """Called about once a second with the open peers (for periodic sends)."""

    def peer_closed(self, peer: SwarmPeer) -> None:
        """Forget what was kept about ``peer``."""


ExtensionFactory = Callable[[TorrentContext], PeerExtension | None]
"""Builds an extension's handler for one torrent; None: not for this torrent."""


@dataclass(frozen=True, slots=True)
class ExtensionSpec:
    name: str
    factory: ExtensionFactory
    #: Our id for it (None: the next free one); peers send to whatever id we announce.
    local_id: int | None = None


class ExtensionCatalogue:
    """Extensions by name, in registration order (see the module docstring)."""

    def __init__(self) -> None:
        self._specs: dict[str, ExtensionSpec] = {}

    def register(
        self, name: str, factory: ExtensionFactory, *, local_id: int | None = None
    ) -> ExtensionSpec:
        if name in self._specs:
            raise ValueError(f"extension {name!r} is registered twice")
        taken = {s.local_id for s in self._specs.values()}
        if local_id is not None and local_id in taken:
            raise ValueError(f"extension id {local_id} is taken")
        ExtensionRegistry().register(name, local_id)  # validates the name and the id
        spec = self._specs[name] = ExtensionSpec(name, factory, local_id)
        return spec

    def unregister(self, name: str) -> None:
        self._specs.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def specs(self) -> list[ExtensionSpec]:
        # Fixed ids first, so an automatic id never takes one another extension asked for.
        return sorted(self._specs.values(), key=lambda s: s.local_id is None)

    def build(
        self, torrent: TorrentContext, registry: ExtensionRegistry | None = None
    ) -> tuple[dict[str, PeerExtension], ExtensionRegistry]:
        """The handlers for one torrent and the id registry its connections announce
        (``registry`` if given, else a new one)."""
        handlers: dict[str, PeerExtension] = {}
        registry = registry if registry is not None else ExtensionRegistry()
        for spec in self.specs():
            handler = spec.factory(torrent)
            if handler is not None:
                handlers[spec.name] = handler
                registry.register(spec.name, spec.local_id)
        return handlers, registry


#: The extensions every torrent session speaks.
PEER_EXTENSIONS = ExtensionCatalogue()

C = TypeVar("C", bound=Callable[[TorrentContext], PeerExtension | None])


def peer_extension(
    name: str, *, local_id: int | None = None, catalogue: ExtensionCatalogue = PEER_EXTENSIONS
) -> Callable[[C], C]:
    """Class (or factory) decorator: register an extension under ``name``."""

    def register(factory: C) -> C:
        catalogue.register(name, factory, local_id=local_id)
        return factory

    return register
