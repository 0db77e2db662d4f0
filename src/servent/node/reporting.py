"""What a running node reports (a mixin of :class:`~servent.node.node.Node`).

Snapshots of torrents, files and peers come from the records and the engine's
figures through the pure functions of :mod:`servent.node.views`; the node's
status adds the transfer totals (:mod:`servent.node.totals`), which outlive
removed torrents and restarts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from servent.errors import TorrentNotFoundError
from servent.node.config import Config
from servent.node.state import StateStore, TorrentRecord
from servent.node.status import (
    FileStatus,
    NodeStatus,
    PathMtuSummary,
    PinholeStatus,
    TorrentStatus,
)
from servent.node.torrent_spec import PeerStatus
from servent.node.totals import TransferTotals
from servent.node.views import file_statuses, torrent_status

if TYPE_CHECKING:
    from servent.codec.metainfo import Metainfo
    from servent.net.dht_driver import DhtDriver
    from servent.node.reachability import Reachability
    from servent.node.running_torrent import RunningTorrent


class NodeReports:
    """Torrents, files, peers and node status; the state belongs to ``Node`` (declared for mypy)."""

    config: Config
    _records: dict[str, TorrentRecord]
    _metainfo: dict[str, Metainfo]
    _totals: TransferTotals | None
    _dht: DhtDriver | None
    reachability: Callable[[], Reachability]
    ipv6_pinhole: Callable[[], PinholeStatus | None]
    utp_path_mtu: Callable[[], PathMtuSummary | None]
    _running: Callable[[str], RunningTorrent]
    _listen_address: Callable[[], tuple[str, int] | None]

    @property
    def store(self) -> StateStore:
        raise NotImplementedError

    def _record(self, torrent_id: str) -> TorrentRecord:
        raise NotImplementedError

    def torrents(self) -> list[TorrentStatus]:
        """Every torrent; one being removed at this moment (its run has stopped,
        its record not yet) is left out rather than failing the whole list."""
        listed: list[TorrentStatus] = []
        for torrent_id in list(self._records):
            with contextlib.suppress(TorrentNotFoundError):
                listed.append(self.torrent(torrent_id))
        return listed

    def torrent(self, torrent_id: str) -> TorrentStatus:
        record = self._record(torrent_id)
        status = self._running(torrent_id).figures()
        metainfo = self._metainfo.get(torrent_id)
        return torrent_status(torrent_id, record, status, metainfo, self._magnet_of(torrent_id))

    def files(self, torrent_id: str) -> list[FileStatus]:
        """The torrent's files (pad files left out) with priorities and progress."""
        record = self._record(torrent_id)
        metainfo = self._metainfo.get(torrent_id)
        if metainfo is None:
            return []
        return file_statuses(record, self._running(torrent_id).figures(), metainfo)

    def peers(self, torrent_id: str) -> list[PeerStatus]:
        self._record(torrent_id)
        return self._running(torrent_id).peers()

    def _count_transfers(self, torrent_id: str) -> None:
        """Fold the torrent's byte counters into the node's totals (see :mod:`.totals`)."""
        if self._totals is None:
            return
        with contextlib.suppress(TorrentNotFoundError):
            status = self._running(torrent_id).figures()
            self._totals.observe(torrent_id, status.downloaded, status.uploaded)

    def status(self) -> NodeStatus:
        torrents = self.torrents()
        totals = self._totals
        assert totals is not None
        for torrent in torrents:
            totals.observe(torrent.id, torrent.downloaded, torrent.uploaded)
        counted = totals.snapshot()
        dht_nodes = 0
        dht_address = None
        if self._dht is not None:
            dht_nodes = len(self._dht.node.routing_table)
            dht_address = self._dht.address
        reach = self.reachability()
        return NodeStatus(
            listen_address=self._listen_address(),
            dht_enabled=self.config.dht_enabled,
            dht_nodes=dht_nodes,
            dht_address=dht_address,
            torrents=len(torrents),
            download_rate=sum(t.download_rate for t in torrents),
            upload_rate=sum(t.upload_rate for t in torrents),
            downloaded=counted.downloaded,
            uploaded=counted.uploaded,
            all_time_downloaded=counted.all_time_downloaded,
            all_time_uploaded=counted.all_time_uploaded,
            shared_folders=tuple(f.path for f in self.store.shared_folders()),
            data_dir=str(self.config.data_dir),
            download_dir=str(self.config.effective_download_dir),
            reachable=reach.reachable,
            external_address=reach.external_address,
            nat=reach.nat,
            relay=reach.relay,
            ipv6_pinhole=self.ipv6_pinhole(),
            utp_path_mtu=self.utp_path_mtu(),
        )

    def _magnet_of(self, torrent_id: str) -> str:
        metainfo = self._metainfo.get(torrent_id)
        if metainfo is not None:
            return metainfo.magnet()
        return self._records[torrent_id].magnet or ""
