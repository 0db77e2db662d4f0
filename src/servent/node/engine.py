"""The seam between :class:`~servent.node.node.Node` and whatever moves torrent data.

``Node`` owns persistence, ids, events and the public API; a
:class:`TorrentEngine` owns the torrents while they run (storage, peers,
trackers, DHT announces).  Keeping the seam this small lets the node work
before the swarm engine is finished and lets the swarm engine be connected
by writing one adapter class.

:class:`LocalEngine` is the engine used until then: it opens each torrent's
storage (so progress, file priorities, resume data and "delete data" are
real) but talks to no peer.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from servent.errors import ServentError, TorrentNotFoundError

if TYPE_CHECKING:
    from servent.codec.magnet import Magnet
    from servent.codec.metainfo import Metainfo
    from servent.net.dht_driver import DhtDriver
    from servent.storage.resume import ResumeStore
    from servent.storage.torrent_storage import TorrentStorage

log = logging.getLogger(__name__)

# Torrent states as shown to users (strings so they travel through JSON unchanged).
CHECKING = "checking"
METADATA = "metadata"
DOWNLOADING = "downloading"
SEEDING = "seeding"
PAUSED = "paused"
ERROR = "error"
STALLED = "stalled"


@dataclass(frozen=True, slots=True)
class TorrentSpec:
    """Everything an engine needs to run one torrent."""

    id: str
    save_path: Path
    resume_store: ResumeStore
    metainfo: Metainfo | None = None
    magnet: Magnet | None = None
    paused: bool = False
    file_priorities: tuple[int, ...] = ()
    download_limit: int = 0
    upload_limit: int = 0


@dataclass(frozen=True, slots=True)
class EngineTorrentStatus:
    state: str
    have_bytes: int = 0
    wanted_bytes: int = 0
    download_rate: float = 0.0
    upload_rate: float = 0.0
    peers: int = 0
    downloaded: int = 0
    uploaded: int = 0
    error: str | None = None
    file_progress: tuple[float, ...] = ()
    file_priorities: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class PeerStatus:
    host: str
    port: int
    client: str = ""
    progress: float = 0.0
    download_rate: float = 0.0
    upload_rate: float = 0.0
    flags: str = ""


@dataclass(frozen=True, slots=True)
class EngineLimits:
    download_rate_limit: int = 0
    upload_rate_limit: int = 0
    max_connections: int = 200
    max_peers_per_torrent: int = 50


MetadataCallback = Callable[[str, "Metainfo"], None]
"""Called by an engine when it fetched the metadata of a magnet torrent."""


class TorrentEngine(Protocol):
    """What the node asks of a torrent engine (SWARM-NET's engine gets an adapter)."""

    on_metadata: MetadataCallback | None

    async def start(self, dht: DhtDriver | None = None) -> None:
        """Begin serving peers; with ``dht`` the engine finds peers through it."""
        ...

    async def close(self) -> None:
        """Stop every torrent (announcing 'stopped'), flush resume data."""
        ...

    @property
    def listen_address(self) -> tuple[str, int] | None: ...
    async def add(self, spec: TorrentSpec) -> None: ...
    async def remove(self, torrent_id: str, delete_data: bool) -> None: ...
    async def pause(self, torrent_id: str) -> None: ...
    async def resume(self, torrent_id: str) -> None: ...
    async def set_file_priorities(self, torrent_id: str, priorities: tuple[int, ...]) -> None: ...
    def set_limits(self, limits: EngineLimits) -> None: ...
    def set_torrent_limits(self, torrent_id: str, download: int, upload: int) -> None: ...
    def status(self, torrent_id: str) -> EngineTorrentStatus: ...
    def peers(self, torrent_id: str) -> list[PeerStatus]: ...


@dataclass(slots=True)
class _LocalTorrent:
    spec: TorrentSpec
    storage: TorrentStorage | None = None
    paused: bool = False
    state: str = CHECKING
    error: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


def delete_payload(save_path: Path, metainfo: Metainfo) -> None:
    """Remove a torrent's files (final and ``.part``) and then-empty folders, inside save_path."""
    root = save_path.resolve()
    folders: set[Path] = set()
    for entry in metainfo.files:
        if entry.pad:
            continue
        target = (root / Path(*entry.path)).resolve()
        if root not in target.parents:
            continue  # never outside the download folder
        for candidate in (target, target.with_name(target.name + ".part")):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                candidate.unlink()
        folders.update(p for p in target.parents if root in p.parents)
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()
    resume_folder = root / ".servent"
    if resume_folder.is_dir() and not any(resume_folder.iterdir()):
        shutil.rmtree(resume_folder, ignore_errors=True)


class LocalEngine:
    """Storage without network: real progress and files, no peers (see module doc)."""

    def __init__(self) -> None:
        self._torrents: dict[str, _LocalTorrent] = {}
        self.on_metadata: MetadataCallback | None = None
        self.limits = EngineLimits()

    async def start(self, dht: DhtDriver | None = None) -> None:
        return None

    async def close(self) -> None:
        for torrent in list(self._torrents.values()):
            await self._close_storage(torrent)
        self._torrents.clear()

    @property
    def listen_address(self) -> tuple[str, int] | None:
        return None

    def _get(self, torrent_id: str) -> _LocalTorrent:
        try:
            return self._torrents[torrent_id]
        except KeyError:
            raise TorrentNotFoundError(f"no torrent {torrent_id}") from None

    async def add(self, spec: TorrentSpec) -> None:
        torrent = _LocalTorrent(spec, paused=spec.paused)
        self._torrents[spec.id] = torrent
        if spec.metainfo is None:
            torrent.state = METADATA
            return
        from servent.storage.torrent_storage import TorrentStorage

        priorities = spec.file_priorities or None
        if priorities is not None and len(priorities) != len(spec.metainfo.files):
            priorities = None
        storage = TorrentStorage(
            spec.metainfo,
            spec.save_path,
            resume_store=spec.resume_store,
            file_priorities=priorities,
        )
        try:
            await storage.open()
        except ServentError as exc:
            torrent.state, torrent.error = ERROR, str(exc)
            await storage.close()
            return
        torrent.storage = storage
        torrent.state = SEEDING if storage.is_complete() else STALLED

    async def _close_storage(self, torrent: _LocalTorrent) -> None:
        if torrent.storage is not None:
            storage, torrent.storage = torrent.storage, None
            await storage.close()

    async def remove(self, torrent_id: str, delete_data: bool) -> None:
        torrent = self._torrents.pop(torrent_id, None)
        if torrent is None:
            return
        await self._close_storage(torrent)
        if delete_data and torrent.spec.metainfo is not None:
            delete_payload(torrent.spec.save_path, torrent.spec.metainfo)

    async def pause(self, torrent_id: str) -> None:
        self._get(torrent_id).paused = True

    async def resume(self, torrent_id: str) -> None:
        self._get(torrent_id).paused = False

    async def set_file_priorities(self, torrent_id: str, priorities: tuple[int, ...]) -> None:
        torrent = self._get(torrent_id)
        if torrent.storage is None:
            return
        for index, priority in enumerate(priorities):
            torrent.storage.set_file_priority(index, priority)
        await torrent.storage.flush()
        torrent.state = SEEDING if torrent.storage.is_complete() else STALLED

    def set_limits(self, limits: EngineLimits) -> None:
        self.limits = limits

    def set_torrent_limits(self, torrent_id: str, download: int, upload: int) -> None:
        self._get(torrent_id).extra["limits"] = (download, upload)

    def status(self, torrent_id: str) -> EngineTorrentStatus:
        torrent = self._get(torrent_id)
        state = PAUSED if torrent.paused and torrent.state != ERROR else torrent.state
        storage, metainfo = torrent.storage, torrent.spec.metainfo
        if storage is None or metainfo is None:
            return EngineTorrentStatus(state=state, error=torrent.error)
        have = storage.have
        have_bytes = sum(storage.piece_size(i) for i in range(storage.num_pieces) if i in have)
        wanted = storage.wanted_pieces()
        wanted_bytes = sum(storage.piece_size(i) for i in range(storage.num_pieces) if i in wanted)
        file_progress = tuple(
            1.0 if entry.pad or storage.file_complete(i) else 0.0
            for i, entry in enumerate(metainfo.files)
        )
        return EngineTorrentStatus(
            state=state,
            have_bytes=min(have_bytes, metainfo.total_length),
            wanted_bytes=min(wanted_bytes, metainfo.total_length),
            file_progress=file_progress,
            file_priorities=storage.file_priorities,
        )

    def peers(self, torrent_id: str) -> list[PeerStatus]:
        self._get(torrent_id)
        return []
