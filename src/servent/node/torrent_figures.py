"""Figures users see for a running torrent: per-file progress, bytes, the peers table.

Pure functions over a torrent's storage and its peers, kept out of the engine
adapter so it only decides *when* to compute them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from servent.node.engine import (
    CHECKING,
    DOWNLOADING,
    ERROR,
    METADATA,
    PAUSED,
    SEEDING,
    STALLED,
    PeerStatus,
)
from servent.node.peer_names import client_name

if TYPE_CHECKING:
    from servent.codec.metainfo import Metainfo
    from servent.net.swarm_peer import SwarmPeer
    from servent.net.torrent_session import TorrentSession, TorrentStatistics
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
