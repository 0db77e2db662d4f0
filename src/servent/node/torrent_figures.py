"""Figures users see for a torrent: per-file progress, bytes, the peers table.

Pure functions over a torrent's storage and its peers, and :class:`TorrentProgress`,
what a torrent keeps of them between sessions; kept out of
:class:`~servent.node.running_torrent.RunningTorrent` so it only decides *when*
to compute them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from servent.node.peer_names import client_name
from servent.node.resume_progress import stored_progress
from servent.node.torrent_spec import (
    CHECKING,
    DOWNLOADING,
    ERROR,
    METADATA,
    PAUSED,
    SEEDING,
    STALLED,
    PeerStatus,
    TorrentFigures,
)

if TYPE_CHECKING:
    from servent.codec.metainfo import Metainfo
    from servent.net.swarm_peer import SwarmPeer
    from servent.net.torrent_session import TorrentSession, TorrentStatistics
    from servent.storage.resume import ResumeStore
    from servent.storage.torrent_storage import TorrentStorage


@dataclass(slots=True)
class Snapshot:
    """What a torrent showed last while it ran (kept while it is paused or restarting)."""

    have_bytes: int = 0
    wanted_bytes: int = 0
    downloaded: int = 0
    uploaded: int = 0
    file_progress: tuple[float, ...] = ()


def file_progress(storage: TorrentStorage, metainfo: Metainfo) -> tuple[float, ...]:
    """Per file, the share of its pieces that are verified (1.0 for complete and pad files)."""
    have = storage.have
    piece_length = metainfo.piece_length
    out: list[float] = []
    for index, entry in enumerate(metainfo.files):
        if entry.pad or entry.length == 0 or storage.file_complete(index):
            out.append(1.0)
            continue
        first = entry.offset // piece_length
        last = (entry.offset + entry.length - 1) // piece_length
        count = sum(1 for piece in range(first, last + 1) if piece in have)
        out.append(count / (last - first + 1))
    return tuple(out)


def peer_status(peer: SwarmPeer, num_pieces: int) -> PeerStatus:
    """One row of the peers table: address, client, progress, rates and uTorrent-style flags
    (D/d download, U/u upload, I incoming, S snubbed, P uTP)."""
    host, port = peer.dialled or peer.session.address
    conn = peer.session.conn
    flags = ""
    if conn.am_interested:
        flags += "D" if not conn.peer_choking else "d"
    if conn.peer_interested:
        flags += "U" if not conn.am_choking else "u"
    if peer.dialled is None:
        flags += "I"  # incoming
    if peer.snubbed:
        flags += "S"
    transport = peer.session.transport
    if transport is not None and transport.get_extra_info("transport") == "utp":
        flags += "P"  # uTorrent's letter for a uTP connection
    have = num_pieces if peer.has_all else peer.pieces.count()
    return PeerStatus(
        host=host,
        port=port,
        client=client_name(peer.identity[2]),
        progress=have / num_pieces if num_pieces else 0.0,
        download_rate=peer.down_rate,
        upload_rate=peer.up_rate,
        flags=flags,
    )


def known_addresses(session: TorrentSession) -> set[tuple[str, int]]:
    """The addresses a session dialled: handed to the torrent's next session."""
    return {peer.dialled for peer in session.peers.values() if peer.dialled is not None}


def stopped_state(error: str | None, has_metadata: bool, paused: bool) -> str:
    """The state of a torrent without a running session: why it does not run."""
    if error is not None:
        return ERROR
    if not has_metadata:
        return METADATA
    return PAUSED if paused else CHECKING


def running_state(error: str | None, stats: TorrentStatistics) -> str:
    """The state of a running torrent, from its session's figures."""
    if error is not None:
        return ERROR
    if stats.complete:
        return SEEDING
    return DOWNLOADING if stats.peers or stats.download_rate > 0 else STALLED


@dataclass(slots=True)
class TorrentProgress:
    """What a torrent keeps of its figures across sessions (since the node started)."""

    priorities: tuple[int, ...] = ()
    snapshot: Snapshot = field(default_factory=Snapshot)
    #: Byte counters of earlier sessions of this torrent.
    carried_down: int = 0
    carried_up: int = 0
    #: Verified bytes of the running session the cached per-file progress is for.
    progress_key: int = -1

    def forget_cached(self) -> None:
        """Per-file progress is computed again at the next look (new session, priorities)."""
        self.progress_key = -1

    def keep(
        self, session: TorrentSession, storage: TorrentStorage | None, metainfo: Metainfo | None
    ) -> None:
        """The figures of a session that stops, carried into the next one."""
        stats = session.statistics()
        progress = self.snapshot.file_progress
        if storage is not None and metainfo is not None:
            progress = file_progress(storage, metainfo)
        size = metainfo.total_length if metainfo is not None else 0
        self.snapshot = Snapshot(
            have_bytes=min(stats.have_bytes, size),
            wanted_bytes=min(stats.wanted_bytes, size),
            downloaded=self.carried_down + stats.downloaded,
            uploaded=self.carried_up + stats.uploaded,
            file_progress=progress,
        )
        self.carried_down = self.snapshot.downloaded
        self.carried_up = self.snapshot.uploaded

    def probe(self, resume_store: ResumeStore, metainfo: Metainfo) -> None:
        """Progress from resume data alone, no file opened (see :mod:`.resume_progress`)."""
        stored = stored_progress(resume_store, metainfo, self.priorities)
        self.snapshot = Snapshot(
            have_bytes=stored.have_bytes,
            wanted_bytes=stored.wanted_bytes,
            downloaded=self.carried_down,
            uploaded=self.carried_up,
            file_progress=stored.file_progress,
        )


def stopped_figures(
    progress: TorrentProgress, error: str | None, metainfo: Metainfo | None, paused: bool
) -> TorrentFigures:
    """A torrent without a session: its last snapshot, and why it does not run."""
    snap = progress.snapshot
    return TorrentFigures(
        state=stopped_state(error, metainfo is not None, paused),
        have_bytes=snap.have_bytes,
        wanted_bytes=snap.wanted_bytes,
        downloaded=snap.downloaded,
        uploaded=snap.uploaded,
        error=error,
        file_progress=snap.file_progress,
        file_priorities=progress.priorities,
    )


def running_figures(
    progress: TorrentProgress,
    session: TorrentSession,
    storage: TorrentStorage | None,
    metainfo: Metainfo | None,
) -> TorrentFigures:
    """A running torrent's live figures (per-file progress recomputed once per piece)."""
    stats = session.statistics()
    priorities = storage.file_priorities if storage is not None else progress.priorities
    if storage is not None and metainfo is not None and progress.progress_key != stats.have_bytes:
        progress.progress_key = stats.have_bytes
        progress.snapshot.file_progress = file_progress(storage, metainfo)
    error = str(session.error) if session.error is not None else None
    size = metainfo.total_length if metainfo is not None else 0
    return TorrentFigures(
        state=running_state(error, stats),
        have_bytes=min(stats.have_bytes, size),
        wanted_bytes=min(stats.wanted_bytes, size),
        download_rate=stats.download_rate,
        upload_rate=stats.upload_rate,
        peers=stats.peers,
        downloaded=progress.carried_down + stats.downloaded,
        uploaded=progress.carried_up + stats.uploaded,
        error=error,
        file_progress=progress.snapshot.file_progress,
        file_priorities=priorities,
    )
