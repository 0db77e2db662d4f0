"""Keeps the local search index in step with the node's torrents.

The node says what happens through its events; every event about a torrent
(added, metadata, state, finished, shared, removed ...) re-reads that one
torrent through the node's public API (or removes it when the node no longer
has it), so the index never has to guess and does not depend on event names. A full pass at start
catches what changed while the node was down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from servent.errors import ServentError, TorrentNotFoundError
from servent.node.search_index import SearchIndex
from servent.node.search_results import indexed_torrent

if TYPE_CHECKING:
    from servent.node.search_host import SearchHost

__all__ = ["IndexSync"]

log = logging.getLogger(__name__)


class IndexSync:
    """Torrent events in, index rows out; ``on_change`` when what is answerable changed."""

    def __init__(self, node: SearchHost, index: SearchIndex, on_change: Callable[[], None]) -> None:
        self.node = node
        self.index = index
        self.on_change = on_change
        self._answerable: set[str] = set()
        #: Torrents never indexed (an invite-only network's), by info-hash.
        self.hidden: Callable[[bytes], bool] = lambda info_hash: False

    async def full(self) -> None:
        present = {status.id for status in self.node.torrents()}
        for torrent_id in self.index.torrent_ids() - present:
            self.index.remove(torrent_id)
        for torrent_id in present:
            self.update(torrent_id)
        self.on_change()

    async def follow(self) -> None:
        events = self.node.events()
        try:
            async for event in events:
                torrent_id = getattr(event, "torrent_id", None)
                if isinstance(torrent_id, str):
                    self.update(torrent_id)
        finally:
            await events.aclose()

    def _shared_ids(self) -> set[str]:
        return {folder.torrent_id for folder in self.node.shared_folders() if folder.torrent_id}

    def update(self, torrent_id: str) -> None:
        try:
            status = self.node.torrent(torrent_id)
            files = self.node.files(torrent_id) if status.size > 0 else []
        except TorrentNotFoundError:
            self.remove(torrent_id)
            return
        except ServentError:
            return
        torrent = indexed_torrent(status, files, torrent_id in self._shared_ids())
        if self.hidden(torrent.info_hash):
            self.remove(torrent_id)
            return
        self.index.put(torrent)
        was = torrent_id in self._answerable
        if torrent.complete:
            self._answerable.add(torrent_id)
        else:
            self._answerable.discard(torrent_id)
        if was != torrent.complete:
            self.on_change()

    def remove(self, torrent_id: str) -> None:
        self.index.remove(torrent_id)
        if torrent_id in self._answerable:
            self._answerable.discard(torrent_id)
            self.on_change()
