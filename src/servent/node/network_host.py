"""What networks need from the node, as a Protocol (so they never import ``Node``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from servent.net.channel_host import ChannelHost
    from servent.node.config import Config
    from servent.node.events import NodeEvent
    from servent.node.identity import NodeIdentity
    from servent.node.messaging import Messenger
    from servent.node.status import ShareResult, TorrentStatus

__all__ = ["NetworkHost"]


class NetworkHost(Protocol):
    """The node as the networks part sees it."""

    config: Config

    @property
    def identity(self) -> NodeIdentity: ...

    @property
    def channels(self) -> ChannelHost: ...

    @property
    def messenger(self) -> Messenger: ...

    def peer_address(self) -> tuple[str, int] | None: ...

    def torrent(self, torrent_id: str) -> TorrentStatus: ...

    async def reconnect_torrent(self, torrent_id: str) -> None: ...

    async def share(
        self, folder: str | Path, *, network: Callable[[bytes, str, int], None] | None = None
    ) -> ShareResult: ...

    def _emit_event(self, event: NodeEvent) -> None: ...
