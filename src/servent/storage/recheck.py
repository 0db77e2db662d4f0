"""Verifying pieces from disk: a full recheck, and the pieces of changed files at open.

Why apart: hashing what is on disk (in parallel, a bounded number of pieces
at a time) is a job of its own next to writing received pieces.
:class:`DiskRecheck` is a mixin of
:class:`~servent.storage.torrent_storage.TorrentStorage`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, TypeVarTuple

from servent.codec.bitfield import Bitfield
from servent.codec.piece_layout import PieceLayout
from servent.errors import StorageError
from servent.storage.model import FileState
from servent.storage.read_cache import ReadCache
from servent.storage.verify import PieceVerifier

__all__ = ["DiskRecheck", "Progress"]

log = logging.getLogger("servent.storage.torrent_storage")

_R = TypeVar("_R")
_Ts = TypeVarTuple("_Ts")
Progress = Callable[[int, int], None]
"""``progress(checked, total)`` during a recheck."""


class DiskRecheck:
    """Hash pieces from disk and mark the ones that verify."""

    layout: PieceLayout
    verifier: PieceVerifier
    _files: list[FileState]
    _have: Bitfield
    _cache: ReadCache
    _executor: Executor
    _stats: dict[str, int]

    if TYPE_CHECKING:

        async def _run(self, func: Callable[[*_Ts], _R], *args: *_Ts) -> _R: ...

        def _require_open(self) -> None: ...

        def _count_missing(self) -> None: ...

        def _reconcile_names_and_allocate(self) -> None: ...

        def _refresh_paths(self) -> None: ...

        def _existing_path(self, f: FileState) -> Path | None: ...

        def _read_range(self, index: int, offset: int, length: int) -> bytes: ...

        async def flush(self) -> None: ...

    async def recheck(self, progress: Progress | None = None) -> Bitfield:
        """Verify every piece whose files exist on disk; returns the new ``have``."""
        self._require_open()
        for piece in list(self._have):  # in place: callers may hold ``have``
            self._have.clear(piece)
        self._cache.clear()
        await self._verify_pieces(range(self.layout.num_pieces), progress)
        self._count_missing()
        await self._run(self._reconcile_names_and_allocate)
        await self.flush()
        return self._have

    async def _verify_pieces(self, pieces: Sequence[int], progress: Progress | None) -> None:
        """Hash ``pieces`` from disk in parallel, setting the ones that verify."""
        self._refresh_paths()
        total = len(pieces)
        done = 0
        width = 8
        queue = iter(pieces)
        running: set[asyncio.Future[tuple[int, bool]]] = set()
        loop = asyncio.get_running_loop()
        while True:
            for piece in queue:
                running.add(loop.run_in_executor(self._executor, self._check_on_disk, piece))
                if len(running) >= width:
                    break
            if not running:
                break
            finished, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for fut in finished:
                piece, ok = fut.result()
                self._stats["pieces_checked_from_disk"] += 1
                if ok:
                    self._have.set(piece)
                done += 1
                if progress is not None:
                    progress(done, total)

    def _check_on_disk(self, piece: int) -> tuple[int, bool]:
        for span in self.layout.spans(piece):
            if not span.pad and self._existing_path(self._files[span.file_index]) is None:
                return piece, False
        try:
            data = self._read_range(piece, 0, self.layout.piece_size(piece))
        except StorageError as exc:
            log.warning("piece %d unreadable: %s", piece, exc)
            return piece, False
        return piece, self.verifier.verify(piece, data)
