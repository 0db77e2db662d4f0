"""How the node's records and the engine's figures become API snapshots.

Pure functions, so the arithmetic (progress, ETA, pad files left out) is
tested without a running node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from servent.node.state import TorrentRecord
from servent.node.status import FileStatus, TorrentId, TorrentStatus
from servent.node.torrent_spec import ERROR, PAUSED, TorrentFigures

if TYPE_CHECKING:
    from servent.codec.metainfo import Metainfo

DEFAULT_FILE_PRIORITY = 1


def _hex(value: bytes | None) -> str | None:
    return value.hex() if value is not None else None


def payload_size(metainfo: Metainfo) -> int:
    """Bytes of the torrent's real files (BEP 47 pad files left out)."""
    return sum(entry.length for entry in metainfo.files if not entry.pad)


def torrent_status(
    torrent_id: str,
    record: TorrentRecord,
    status: TorrentFigures,
    metainfo: Metainfo | None,
    magnet: str,
) -> TorrentStatus:
    """One torrent as lists show it: progress of what is wanted, ETA at the current rate.

    ``size`` is the payload a user gets: BEP 47 pad files (which hybrid torrents
    put between files) are left out, as every client shows it."""
    size = payload_size(metainfo) if metainfo is not None else 0
    wanted = status.wanted_bytes or size
    progress = min(status.have_bytes / wanted, 1.0) if wanted else 0.0
    remaining = max(wanted - status.have_bytes, 0)
    eta: float | None = None
    if remaining and status.download_rate > 0:
        eta = remaining / status.download_rate
    elif metainfo is not None and not remaining:
        eta = 0.0
    state = PAUSED if record.paused and status.state != ERROR else status.state
    return TorrentStatus(
        id=TorrentId(torrent_id),
        name=record.name,
        info_hash_v1=_hex(record.info_hash_v1),
        info_hash_v2=_hex(record.info_hash_v2),
        state=state,
        progress=progress,
        size=size,
        have_bytes=min(status.have_bytes, size),
        download_rate=status.download_rate,
        upload_rate=status.upload_rate,
        peers=status.peers,
        eta=eta,
        paused=record.paused,
        save_path=record.save_path,
        added_at=record.added_at,
        magnet=magnet or None,
        error=status.error,
        downloaded=status.downloaded,
        uploaded=status.uploaded,
        trackers=tracker_count(metainfo, record.magnet),
    )


def tracker_count(metainfo: Metainfo | None, magnet: str | None) -> int:
    """Distinct tracker URLs of the torrent, or of its magnet while metadata is unknown."""
    if metainfo is not None:
        return len({url for tier in metainfo.trackers for url in tier})
    if not magnet:
        return 0
    from servent.codec.magnet import parse_magnet
    from servent.errors import ServentError

    try:
        return len(parse_magnet(magnet).trackers)
    except ServentError:
        return 0


def file_statuses(
    record: TorrentRecord, status: TorrentFigures, metainfo: Metainfo
) -> list[FileStatus]:
    """The torrent's files with priorities and progress; pad files are left out."""
    priorities = status.file_priorities or record.file_priorities
    progress = status.file_progress
    out = []
    for index, entry in enumerate(metainfo.files):
        if entry.pad:
            continue
        out.append(
            FileStatus(
                index=index,
                path="/".join(entry.path),
                size=entry.length,
                priority=priorities[index] if index < len(priorities) else DEFAULT_FILE_PRIORITY,
                progress=progress[index] if index < len(progress) else 0.0,
            )
        )
    return out
