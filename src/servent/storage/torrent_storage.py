"""TorrentStorage: the payload files of one torrent, verified piece by piece.

Design decisions (the "why"):

* **Verify before write.**  ``write_piece`` hashes the whole piece in a worker
  thread and writes it only if it matches, so a corrupt piece never reaches the
  disk and ``have`` only ever contains verified pieces.
* **Off the event loop.**  Hashing and positional I/O (``os.pread/pwrite`` on
  pooled descriptors) run in a thread pool; ``hashlib`` releases the GIL so
  hashing uses every core.
* **Piece writes without a thread hand-off (decision 0055).**  Where the
  kernel offers io_uring, a finished piece of at most ``LOOP_HASH_MAX`` is
  hashed on the loop thread (still in cache) and written through io_uring
  (:mod:`~servent.storage.uring_writer`): the kernel's workers do the
  blocking part, so the loop never waits for the disk, and no Python thread
  takes the GIL per piece.  Without io_uring (or ``use_uring=False``, or
  ``SERVENT_NO_URING=1``), both stay in the pool.
* **Partial files are recognisable.**  A file is named ``<name>.part`` until
  every piece overlapping it is verified, then renamed to ``<name>``.  On open, a
  file carrying its real name that does not verify completely is renamed back
  to ``.part``: a real name always means complete.
* **Sparse allocation.**  Wanted files are created sparse (``ftruncate``) at
  open; no blocks are reserved, so a full disk shows up as
  :class:`~servent.errors.DiskFullError` from the write that hit it.
* **Priorities.**  Priority 0 means "do not download": such a file is not
  created.  A piece straddling a wanted and an unwanted file still has to be
  written whole to be verified, so the unwanted file is then created sparse
  (as ``.part``) holding just those boundary bytes; it never gets its real
  name unless all of its pieces arrive.
* **Resume data, crash-safe.**  Verified pieces are recorded at most every
  ``resume_interval`` seconds (and on ``flush``/``close``): payload files
  written since the last record are ``fdatasync``-ed first, then the record is
  replaced atomically.  So every piece in a record is durable.  The record
  keeps each file's ``(size, mtime_ns)``; on open, files whose state differs
  (written after the last record, or changed behind our back) have all their
  pieces verified again, which also recovers pieces written after the last
  record, while untouched files are trusted without hashing.
* **Never outside the folder.**  Paths are re-checked against the disk
  (symlinked parents resolved, symlinked files refused, ``O_NOFOLLOW``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar, TypeVarTuple

from servent.codec.bitfield import Bitfield
from servent.codec.piece_layout import PieceLayout
from servent.errors import StorageError
from servent.storage.file_pool import FilePool
from servent.storage.model import FileState, StorageMetainfo
from servent.storage.payload_files import PayloadFiles
from servent.storage.read_cache import ReadCache
from servent.storage.recheck import DiskRecheck, Progress
from servent.storage.resume import MISSING, FileResumeStore, ResumeStore
from servent.storage.resume_keeping import ResumeKeeping
from servent.storage.uring_pieces import UringPieceWrites
from servent.storage.uring_writer import UringWriter, open_writer
from servent.storage.verify import PieceVerifier

__all__ = ["RESUME_FOLDER", "Progress", "TorrentStorage"]

log = logging.getLogger(__name__)

RESUME_FOLDER = ".servent"
LOOP_HASH_MAX = 4 * 1024 * 1024  # larger pieces are hashed in the pool (the loop would stall)
URING_DRAIN_TIMEOUT = 30.0  # seconds close() waits for io_uring writes still running
_R = TypeVar("_R")
_Ts = TypeVarTuple("_Ts")


class TorrentStorage(PayloadFiles, UringPieceWrites, ResumeKeeping, DiskRecheck):
    """The only owner of one torrent's payload files.  See the module docstring.

    Its jobs around piece I/O live in mixins: :class:`PayloadFiles` (names,
    folders, allocation), :class:`UringPieceWrites` (writes through io_uring),
    :class:`ResumeKeeping` (the resume record),
    :class:`DiskRecheck` (hashing what is on disk).
    """

    def __init__(
        self,
        metainfo: StorageMetainfo,
        download_dir: Path | str,
        *,
        resume_store: ResumeStore | None = None,
        executor: Executor | None = None,
        max_open_files: int = 64,
        read_cache_bytes: int = 8 * 1024 * 1024,
        resume_interval: float = 1.0,
        verify_both: bool = False,
        file_priorities: Sequence[int] | None = None,
        use_uring: bool = True,
    ) -> None:
        self.metainfo = metainfo
        self.download_dir = Path(download_dir)
        self.layout = PieceLayout(metainfo.files, metainfo.piece_length)
        if self.layout.num_pieces != metainfo.num_pieces:
            raise StorageError(
                f"files cover {self.layout.num_pieces} pieces, metainfo says {metainfo.num_pieces}"
            )
        self.verifier = PieceVerifier(
            self.layout,
            metainfo.files,
            metainfo.piece_hashes,
            metainfo.piece_layers,
            verify_both=verify_both,
        )
        info_hash = metainfo.info_hash_v1 or metainfo.info_hash_v2
        if info_hash is None:
            raise StorageError("the torrent has no info-hash")
        self.info_hash = info_hash
        self.resume_key = info_hash.hex()
        self._resume_store: ResumeStore = resume_store or FileResumeStore(
            self.download_dir / RESUME_FOLDER
        )
        self._own_executor = executor is None
        self._executor: Executor = executor or ThreadPoolExecutor(
            max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="servent-storage"
        )
        self._pool = FilePool(max_open_files)
        self._have = Bitfield(self.layout.num_pieces)
        self._files: list[FileState] = []
        self._wanted: Bitfield | None = None
        self._inflight: dict[int, asyncio.Future[bool] | None] = {}  # None: nobody waits
        self._dirty_files: set[int] = set()
        self._cache = ReadCache(read_cache_bytes)
        self._resume_interval = resume_interval
        self._resume_dirty = asyncio.Event()
        self._save_lock = asyncio.Lock()
        self._saver: asyncio.Task[None] | None = None
        self._opened = False
        self._closed = False
        if file_priorities is not None and len(file_priorities) != len(metainfo.files):
            raise ValueError("one priority per file (pad files included) is required")
        self._initial_priorities = file_priorities
        self._use_uring = use_uring
        self._writer: UringWriter | None = None
        self._stats = {"pieces_written": 0, "hash_failures": 0, "pieces_checked_from_disk": 0}

    # ------------------------------------------------------------------ state

    @property
    def have(self) -> Bitfield:
        """The verified pieces (live object; do not modify)."""
        return self._have

    @property
    def num_pieces(self) -> int:
        return self.layout.num_pieces

    def have_piece(self, index: int) -> bool:
        return index in self._have

    def piece_size(self, index: int) -> int:
        return self.layout.piece_size(index)

    def file_path(self, file_index: int) -> Path:
        """Where the file is now: ``<name>`` if complete, else ``<name>.part``."""
        f = self._files[file_index]
        return f.final if f.missing == 0 else f.part

    def file_complete(self, file_index: int) -> bool:
        return self._files[file_index].missing == 0

    @property
    def file_priorities(self) -> tuple[int, ...]:
        return tuple(f.priority for f in self._files)

    def set_file_priority(self, file_index: int, priority: int) -> None:
        """Set a file's priority; 0 = do not download (the picker skips its pieces)."""
        if priority < 0:
            raise ValueError("priority must be >= 0")
        self._files[file_index].priority = priority
        self._wanted = None
        self._resume_dirty.set()

    def wanted_pieces(self) -> Bitfield:
        """Pieces overlapping at least one file with priority > 0."""
        if self._wanted is None:
            wanted = Bitfield(self.layout.num_pieces)
            for f in self._files:
                if f.real and f.priority > 0:
                    for piece in f.pieces:
                        wanted.set(piece)
            self._wanted = wanted
        return self._wanted

    def piece_priorities(self) -> list[int]:
        """Per piece, the highest priority of the files it overlaps (0 = not wanted).

        What the picker orders by: a piece shared by a skipped and a wanted file
        is wanted; one shared by a normal and a high-priority file is high.
        """
        priorities = [0] * self.layout.num_pieces
        for f in self._files:
            if f.real and f.priority > 0:
                for piece in f.pieces:
                    priorities[piece] = max(priorities[piece], f.priority)
        return priorities

    def is_complete(self) -> bool:
        """True when every wanted piece is verified."""
        return self.wanted_pieces().issubset(self._have)

    def is_seed(self) -> bool:
        return self._have.all()

    def add_piece_layer(self, pieces_root: bytes, layer: bytes) -> bool:
        """Accept a v2 piece layer received from a peer (magnet downloads).

        Returns False (and keeps nothing) unless ``layer`` hashes up to
        ``pieces_root`` of one of the torrent's files.
        """
        return self.verifier.add_piece_layer(pieces_root, layer)

    def statistics(self) -> dict[str, int]:
        """Counters since construction: pieces written, hash failures, pieces re-hashed."""
        return dict(self._stats, open_files=self._pool.open_count())

    # ------------------------------------------------------------------ open

    async def open(self) -> None:
        """Check paths, load resume data, verify what changed, allocate wanted files."""
        if self._opened:
            return
        await self._run(self._prepare_files)
        record = await self._run(self._load_record)
        if record is not None:
            for piece in Bitfield.from_bytes(record.have, self.layout.num_pieces):
                self._have.set(piece)
            for f, prio in zip(self._files, record.priorities, strict=True):
                f.priority = prio
        if self._initial_priorities is not None:
            for f, prio in zip(self._files, self._initial_priorities, strict=True):
                f.priority = max(prio, 0)
        states = await self._run(self._disk_states)
        if record is None:
            suspect = [i for i, f in enumerate(self._files) if f.real and states[i] != MISSING]
        else:
            suspect = [
                i
                for i, f in enumerate(self._files)
                if f.real and states[i] != record.file_states[i]
            ]
        to_check: set[int] = set()
        for i in suspect:
            to_check.update(self._files[i].pieces)
        for piece in to_check:
            self._have.clear(piece)
        if to_check:
            log.info("verifying %d pieces of %d changed files", len(to_check), len(suspect))
            await self._verify_pieces(sorted(to_check), None)
        self._count_missing()
        await self._run(self._reconcile_names_and_allocate)
        self._opened = True
        await self.flush()
        self._saver = asyncio.get_running_loop().create_task(
            self._resume_saver(), name=f"resume-saver-{self.resume_key[:8]}"
        )

    # ------------------------------------------------------------------ write

    async def write_piece(self, index: int, data: bytes | bytearray | memoryview) -> bool:
        """Verify piece ``index`` and write it if valid; False if the hash does not match."""
        if not self._opened or self._closed:  # (_require_open, inlined: once per piece)
            raise StorageError("storage is not open")
        if not 0 <= index < self.layout.num_pieces:
            raise StorageError(f"piece {index} outside 0..{self.layout.num_pieces - 1}")
        if index in self._have:
            return True
        inflight = self._inflight
        while index in inflight:  # the same piece is being written: its outcome may do
            pending = inflight[index]
            if pending is None:  # the first to wait makes the future (rare: most have none)
                pending = inflight[index] = asyncio.get_running_loop().create_future()
            if await asyncio.shield(pending):
                return True
        inflight[index] = None
        completed: list[int] = []
        try:
            writer = self._uring_writer()
            if writer is not None and len(data) <= LOOP_HASH_MAX:  # the usual piece: hashed on
                # the loop thread (hot in cache; a pool hand-off costs more), no coroutine between
                ok = self.verifier.verify(index, data)  # (a size not the piece's fails at once)
                files = await self._write_verified(writer, index, data) if ok else None
            else:
                files = await self._verify_and_store(writer, index, data)
            ok = files is not None
            if files is not None:
                completed = self._mark_have(index, files)
                self._stats["pieces_written"] += 1
            else:
                self._stats["hash_failures"] += 1
        except BaseException as exc:
            waiters = inflight.pop(index, None)  # still ours: others only wait while it is
            if waiters is not None:
                waiters.set_exception(exc)
                waiters.exception()  # retrieved here; waiters get their own copy
            raise
        waiters = inflight.pop(index, None)
        if waiters is not None:
            waiters.set_result(ok)
        if ok:
            if completed:
                await self._complete_files(completed)
            self._resume_dirty.set()
        return ok

    @property
    def writes_through_uring(self) -> bool:
        """Whether pieces written so far went through io_uring from the loop (else: the pool)."""
        return self._writer is not None

    def _uring_writer(self) -> UringWriter | None:
        """The io_uring writer, made at the first piece (a seeding torrent never needs a ring)."""
        if self._use_uring:
            self._use_uring = False  # one try: a refused ring leaves the pool for good
            self._writer = open_writer(asyncio.get_running_loop())
        return self._writer

    async def _verify_and_store(
        self, writer: UringWriter | None, index: int, data: bytes | bytearray | memoryview
    ) -> list[int] | None:
        """Piece ``index`` verified in the pool, then written (in the pool too without a ring):
        the real files it holds, or None if its hash failed."""
        if writer is None:
            if await self._run(self._verify_and_write, index, data):
                return self.layout.piece_files(index)
            return None
        if not await self._run(self.verifier.verify, index, data):  # too large for the loop
            return None
        return await self._write_verified(writer, index, data)

    def _verify_and_write(self, index: int, data: bytes | bytearray | memoryview) -> bool:
        if not self.verifier.verify(index, data):
            return False
        view = memoryview(data)
        position = 0
        for span in self.layout.spans(index):
            if not span.pad:
                f = self._files[span.file_index]
                if not f.created:  # unwanted at open, or deleted: make its folder first
                    self._make_parent(self._pool.path_of(span.file_index))
                    f.created = True
                self._pool.pwrite(
                    span.file_index, span.file_offset, view[position : position + span.length]
                )
            position += span.length
        return True

    def _mark_have(self, index: int, files: list[int]) -> list[int]:
        """Piece ``index`` (in ``files``) is stored: returns the files it completed."""
        self._have.set(index)
        completed = []
        for file_index in files:
            f = self._files[file_index]
            f.missing -= 1
            self._dirty_files.add(file_index)
            if f.missing == 0:
                completed.append(file_index)
        return completed

    async def _complete_files(self, completed: list[int]) -> None:
        for file_index in completed:
            f = self._files[file_index]
            log.info("file complete: %s", f.final)
            await self._run(self._pool.rename, file_index, f.final)

    # ------------------------------------------------------------------ read

    async def read_block(self, index: int, offset: int, length: int) -> bytes:
        """Bytes of a verified piece for an upload, read (and cached) by chunks of 1 MiB."""
        self._require_open()
        if index not in self._have:
            raise StorageError(f"piece {index} is not verified; cannot read it")
        size = self.layout.piece_size(index)
        if offset < 0 or length <= 0 or offset + length > size:
            raise StorageError(f"block {offset}+{length} outside piece {index} of {size} bytes")
        cache = self._cache
        view = cache.view(index, offset, length)
        if view is not None:
            return bytes(view)
        start, span = cache.chunk_span(size, offset)
        if offset + length > start + span or not cache.cacheable(span):
            return await self._run(self._read_range, index, offset, length)
        chunk = await self._run(self._read_range, index, start, span)
        cache.put(index, start, chunk)
        return chunk[offset - start : offset - start + length]

    def cached_block(self, index: int, offset: int, length: int) -> memoryview | None:
        """A block of verified, cached payload without a copy or an await; ``None`` if not cached.

        Why: an uploader serving 16 KiB blocks at hundreds of MiB/s spends more
        time copying and awaiting than sending; a view of the cached (immutable)
        chunk can go straight to the socket.  On ``None``, :meth:`read_block`
        reads the block's chunk (and caches it).
        """
        if index not in self._have:
            return None
        view = self._cache.view(index, offset, length)
        if view is None:
            size = self.layout.piece_size(index)
            if offset < 0 or length <= 0 or offset + length > size:
                raise StorageError(f"block {offset}+{length} outside piece {index} of {size} bytes")
        return view

    async def read_piece(self, index: int) -> bytes:
        return await self.read_block(index, 0, self.layout.piece_size(index))

    def _read_range(self, index: int, offset: int, length: int) -> bytes:
        parts: list[bytes] = []
        for span in self.layout.spans(index, offset, length):
            if span.pad:
                parts.append(bytes(span.length))
            else:
                parts.append(self._pool.pread(span.file_index, span.file_offset, span.length))
        return b"".join(parts)

    # ------------------------------------------------------------------ close

    async def close(self) -> None:
        """Stop the resume saver, record the final state, close every file."""
        if self._closed:
            return
        self._closed = True
        if self._saver is not None:
            self._saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._saver
        try:
            await self._stop_writer()
            if self._opened:
                await self.flush()
        finally:
            if self._writer is not None:
                self._writer.close()
            self._pool.close_all()
            if self._own_executor:
                self._executor.shutdown(wait=True)

    async def _stop_writer(self) -> None:
        if self._writer is not None and not await self._writer.drain(URING_DRAIN_TIMEOUT):
            log.warning("io_uring writes still running after %.0f s", URING_DRAIN_TIMEOUT)

    async def __aenter__(self) -> TorrentStorage:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ helpers

    def _require_open(self) -> None:
        if not self._opened or self._closed:
            raise StorageError("storage is not open")

    async def _run(self, func: Callable[[*_Ts], _R], *args: *_Ts) -> _R:
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)
