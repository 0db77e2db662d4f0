"""Writing verified pieces through io_uring from the loop thread (a TorrentStorage mixin).

Why apart from :mod:`~servent.storage.torrent_storage`: the per-piece path
of decision 0055 (hash on the loop thread, write through
:class:`~servent.storage.uring_writer.UringWriter`) is the leecher's
hottest storage code, kept small and on its own.  A piece inside one file
(the usual case) is one write awaited through one future; a piece across
files has its spans submitted together and awaited together.  Descriptors
stay held in the :class:`~servent.storage.file_pool.FilePool` while the
kernel writes; a file not yet open is opened in the pool (an ``open`` may
block).  Errors become the same :func:`~servent.storage.file_pool.storage_error`
as the pool's writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar, TypeVarTuple

from servent.codec.piece_layout import PieceLayout
from servent.storage.file_pool import FilePool, storage_error
from servent.storage.model import FileState
from servent.storage.uring_writer import Part, UringWriter

__all__ = ["UringPieceWrites"]

_R = TypeVar("_R")
_Ts = TypeVarTuple("_Ts")


class UringPieceWrites:
    """Verified pieces written through io_uring; see the module docstring."""

    layout: PieceLayout
    _files: list[FileState]
    _pool: FilePool

    if TYPE_CHECKING:

        async def _run(self, func: Callable[[*_Ts], _R], *args: *_Ts) -> _R: ...

        def _make_parent(self, path: Path) -> None: ...

    async def _write_verified(
        self, writer: UringWriter, index: int, data: bytes | bytearray | memoryview
    ) -> list[int]:
        """Write verified piece ``index``; returns the real files it holds, once all is written."""
        inside = self.layout.inside_one_file(index)
        if inside is None:  # across files (or pad files): every span, submitted together
            await self._write_through(writer, index, memoryview(data))
            return self.layout.piece_files(index)
        # The usual piece, inside one file: one write, one future, one io_uring_enter, and
        # no coroutine below this one while the file is open already.
        file_index, offset = inside
        held = self._pool.hold_open(file_index) if self._files[file_index].created else None
        fd, path, token = held if held is not None else await self._hold_file(file_index)
        try:
            batch = writer.submit(((fd, offset, data),))
            if batch is not None:
                try:
                    await batch.future
                except asyncio.CancelledError:
                    await writer.outlast(batch)  # the kernel lets go of ``data`` first
                    raise
                failed = batch.failed
                if failed is not None:
                    raise storage_error(failed[1], "writing", path) from failed[1]
        finally:
            self._pool.release(token)
        return [file_index]

    async def _write_through(self, writer: UringWriter, index: int, view: memoryview) -> None:
        """Write piece ``index`` with io_uring; returns once every span is written or failed."""
        held: list[object] = []
        parts: list[Part] = []
        paths: list[Path] = []
        try:
            position = 0
            for span in self.layout.spans(index):
                if not span.pad:
                    fd, path, token = await self._hold_file(span.file_index)
                    held.append(token)
                    parts.append((fd, span.file_offset, view[position : position + span.length]))
                    paths.append(path)
                position += span.length
            failed = await writer.pwrite_all(parts)  # all submitted at once, awaited together
        finally:
            for token in held:
                self._pool.release(token)
        if failed is not None:
            raise storage_error(failed[1], "writing", paths[failed[0]]) from failed[1]

    async def _hold_file(self, file_index: int) -> tuple[int, Path, object]:
        f = self._files[file_index]
        if f.created:
            held = self._pool.hold_open(file_index)
            if held is not None:
                return held
        return await self._run(self._open_for_write, file_index)

    def _open_for_write(self, file_index: int) -> tuple[int, Path, object]:
        f = self._files[file_index]
        if not f.created:  # unwanted at open, or deleted: make its folder first
            self._make_parent(self._pool.path_of(file_index))
            f.created = True
        return self._pool.hold(file_index)
