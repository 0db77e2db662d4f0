"""Keeping resume data: loading, coalesced crash-safe saving (a TorrentStorage mixin).

Why apart: the resume record has its own rules (payload synced before the
record that names it, one write per interval, a record for another torrent
ignored), independent of reading and writing pieces.  :class:`ResumeKeeping`
only makes sense as a base of
:class:`~servent.storage.torrent_storage.TorrentStorage`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, TypeVarTuple

from servent.codec.bitfield import Bitfield
from servent.codec.piece_layout import PieceLayout
from servent.errors import ResumeDataError, StorageError
from servent.storage.file_pool import FilePool, storage_error
from servent.storage.model import FileState
from servent.storage.resume import ResumeRecord, ResumeStore

__all__ = ["ResumeKeeping"]

log = logging.getLogger("servent.storage.torrent_storage")

_R = TypeVar("_R")
_Ts = TypeVarTuple("_Ts")


class ResumeKeeping:
    """Load the resume record at open; save it, coalesced, as pieces verify."""

    info_hash: bytes
    resume_key: str
    layout: PieceLayout
    _files: list[FileState]
    _have: Bitfield
    _pool: FilePool
    _resume_store: ResumeStore
    _resume_interval: float
    _resume_dirty: asyncio.Event
    _save_lock: asyncio.Lock
    _dirty_files: set[int]

    if TYPE_CHECKING:

        async def _run(self, func: Callable[[*_Ts], _R], *args: *_Ts) -> _R: ...

        def _disk_states(self) -> list[tuple[int, int]]: ...

    def _load_record(self) -> ResumeRecord | None:
        data = self._resume_store.load(self.resume_key)
        if data is None:
            return None
        try:
            record = ResumeRecord.decode(data)
            if (
                record.info_hash != self.info_hash
                or record.num_pieces != self.layout.num_pieces
                or record.piece_length != self.layout.piece_length
                or len(record.file_states) != len(self._files)
                or len(record.priorities) != len(self._files)
            ):
                raise ResumeDataError("resume data is for another torrent")
            Bitfield.from_bytes(record.have, self.layout.num_pieces)
        except StorageError as exc:
            log.warning("ignoring resume data of %s: %s", self.resume_key, exc)
            return None
        return record

    async def flush(self) -> None:
        """Record the verified pieces now (payload synced first); crash-safe."""
        async with self._save_lock:
            self._resume_dirty.clear()
            have = self._have.to_bytes()
            priorities = tuple(f.priority for f in self._files)
            dirty, self._dirty_files = self._dirty_files, set()
            try:
                await self._run(self._save_record, have, priorities, dirty)
            except BaseException:
                self._dirty_files |= dirty
                raise

    def _save_record(self, have: bytes, priorities: tuple[int, ...], dirty: set[int]) -> None:
        for file_index in sorted(dirty):
            self._pool.sync(file_index)
        record = ResumeRecord(
            info_hash=self.info_hash,
            piece_length=self.layout.piece_length,
            num_pieces=self.layout.num_pieces,
            have=have,
            file_states=tuple(self._disk_states()),
            priorities=priorities,
        )
        try:
            self._resume_store.save(self.resume_key, record.encode())
        except OSError as exc:
            raise storage_error(exc, "saving resume data for", self.resume_key) from exc

    async def _resume_saver(self) -> None:
        """Owned by this storage: coalesces resume writes to one per interval."""
        while True:
            await self._resume_dirty.wait()
            await asyncio.sleep(self._resume_interval)  # rate limit, not synchronisation
            try:
                await self.flush()
            except StorageError as exc:
                log.error("cannot save resume data: %s", exc)
