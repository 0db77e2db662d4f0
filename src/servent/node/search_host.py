"""What search needs from the node, as a Protocol (so search never imports ``Node``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from servent.net.channel_host import ChannelHost
    from servent.net.node_channel import NodeChannel
    from servent.node.config import Config
    from servent.node.events import EventSubscription
    from servent.node.identity import NodeIdentity
    from servent.node.reachability import Reachability
    from servent.node.state import SharedFolder
    from servent.node.status import FileStatus, TorrentStatus

__all__ = ["SearchHost"]


class SearchHost(Protocol):
    """The node as search sees it: settings, identity, channels, torrents, events."""

    config: Config

    @property
    def identity(self) -> NodeIdentity: ...

    @property
    def channels(self) -> ChannelHost: ...

    def peer_address(self) -> tuple[str, int] | None: ...

    def torrents(self) -> list[TorrentStatus]: ...

    def torrent(self, torrent_id: str) -> TorrentStatus: ...

    def files(self, torrent_id: str) -> list[FileStatus]: ...

    def shared_folders(self) -> list[SharedFolder]: ...

    def events(self) -> EventSubscription: ...

    def reachability(self) -> Reachability: ...

    async def check_reachable(self, channel: NodeChannel) -> Reachability: ...
