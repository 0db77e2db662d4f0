"""The node-wide side of torrents over node channels (``docs/relay.md``).

:class:`NodeRoutes` is what the node lends its torrents: our own advert for
the BEP 10 handshake (``sv_node``), a way to reach a node by its advert (a
channel: open, punched or relayed), and which address each node key was
heard to listen on, to label a peer-wire stream that node opens to us.  The
engine's dialler carries it; the node fills it once its channels run.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from servent.codec.compact import Address
from servent.proto.node_routes import NodeAdvert

if TYPE_CHECKING:
    from servent.net.node_channel import NodeChannel

__all__ = ["NodeReach", "NodeRoutes"]

#: Opens (or reuses) a channel to the node an advert names.
NodeReach = Callable[[NodeAdvert], Awaitable["NodeChannel"]]
MAX_REMEMBERED = 1024


def _no_advert() -> NodeAdvert | None:
    return None


class NodeRoutes:
    """See the module docstring; ``own`` and ``reach`` are set by the node."""

    def __init__(self) -> None:
        self.own: Callable[[], NodeAdvert | None] = _no_advert
        self.reach: NodeReach | None = None
        self._addresses: OrderedDict[bytes, Address] = OrderedDict()

    def remember(self, key: bytes, address: Address) -> None:
        """``key`` listens on ``address`` (as a torrent peer said); newest kept, bounded."""
        self._addresses[key] = address
        self._addresses.move_to_end(key)
        while len(self._addresses) > MAX_REMEMBERED:
            self._addresses.popitem(last=False)

    def address_of(self, key: bytes) -> Address | None:
        return self._addresses.get(key)
