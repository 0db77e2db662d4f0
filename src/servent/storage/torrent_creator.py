"""Creating a torrent from files on disk: read, hash on every core, build.

Hashing is split into chunks of whole pieces (a few MiB) that worker threads
hash in parallel (``hashlib`` and ``os.preadv`` release the GIL on large
buffers).  A worker reads its chunk a part (<= 1 MiB) at a time into a
per-thread buffer that stays in the core's L2 cache, and computes the SHA-1
(v1) and the 16 KiB SHA-256 leaves (v2) of that part from the cache: every
byte is read from memory once.  Files are read, not mapped: a file that
shrinks while it is hashed is a ``MetainfoError``, where a mapping would die
of SIGBUS.  Workers take chunks from the plan themselves and keep only
hashes, so memory holds one part per worker whatever the payload size.  The
layout and encoding live in :mod:`servent.codec.metainfo.build`.
"""

from __future__ import annotations

import bisect
import dataclasses
import hashlib
import logging
import os
import queue
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from servent.codec.merkle import (
    BLOCK_SIZE,
    file_root_from_blocks,
    merkle_root,
    root_from_piece_layer,
)
from servent.codec.metainfo.build import (
    SourceFile,
    TorrentOptions,
    TorrentVersion,
    build_torrent,
    check_piece_length,
    choose_piece_length,
    layout_files,
)
from servent.codec.metainfo.model import FileEntry, Metainfo
from servent.errors import MetainfoError
from servent.storage.sync_folder import TEMPORARY_SUFFIX, VERSIONS_FOLDER

logger = logging.getLogger(__name__)

#: ``progress(bytes_hashed, total_bytes)``, called from the creating thread.
ProgressCallback = Callable[[int, int], None]

DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024
#: Bytes read and hashed at a time: small enough to stay in a core's L2 cache
#: between the read and the two hashes, large enough to make syscalls rare.
READ_BYTES = 1024 * 1024
MAX_SOURCE_FILES = 1_000_000


@dataclass(frozen=True, slots=True)
class _Segment:
    """``length`` bytes at ``offset`` of file ``path``; ``path`` None means zeros."""

    path: str | None
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class _Chunk:
    first_piece: int
    segments: tuple[_Segment, ...]
    v1_length: int  # bytes covered by v1 pieces (data plus zero padding)
    file_index: int  # the file whose bytes this is (v2); -1 for v1-only chunks
    data_length: int  # real payload bytes in the chunk


@dataclass(frozen=True, slots=True)
class _ChunkHashes:
    v1: list[bytes]
    v2_pieces: list[bytes]  # piece-layer hashes of the chunk's whole pieces
    v2_blocks: list[bytes]  # block hashes, kept only for files of one piece


def scan_payload(path: Path) -> tuple[str, list[tuple[SourceFile, Path]], bool]:
    """Name, files (sorted walk, regular files only) and whether it is a single file."""
    info = path.stat()
    name = path.resolve().name
    if stat.S_ISREG(info.st_mode):
        return name, [(SourceFile((name,), info.st_size, _attr(info)), path)], True
    if not stat.S_ISDIR(info.st_mode):
        raise MetainfoError(f"{str(path)!r} is neither a file nor a folder")
    found: list[tuple[SourceFile, Path]] = []
    for folder, dirs, names in os.walk(path, followlinks=False):
        if folder == str(path):  # a synced folder's kept versions are never shared
            dirs[:] = [d for d in dirs if d != VERSIONS_FOLDER]
        dirs.sort()
        base = Path(folder)
        for filename in sorted(names):
            if filename.endswith(TEMPORARY_SUFFIX):  # a synced file being placed
                continue
            full = base / filename
            file_info = full.lstat()
            if stat.S_ISLNK(file_info.st_mode) or not stat.S_ISREG(file_info.st_mode):
                logger.info("skipping %s: not a regular file", full)
                continue
            rel = full.relative_to(path).parts
            found.append((SourceFile(rel, file_info.st_size, _attr(file_info)), full))
            if len(found) > MAX_SOURCE_FILES:
                raise MetainfoError(f"more than {MAX_SOURCE_FILES} files under {str(path)!r}")
    if not found:
        raise MetainfoError(f"folder {str(path)!r} holds no files")
    return name, found, False


def _attr(info: os.stat_result) -> str:
    return "x" if info.st_mode & stat.S_IXUSR else ""


def create_torrent(
    path: str | os.PathLike[str],
    *,
    version: TorrentVersion = TorrentVersion.HYBRID,
    piece_length: int | None = None,
    options: TorrentOptions | None = None,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Metainfo:
    """Hash the file or folder at ``path`` and return the new torrent."""
    root = Path(path)
    name, found, single = scan_payload(root)
    sources = [s for s, _ in found]
    on_disk = {s.path: p for s, p in found}
    total = sum(s.length for s in sources)
    if total == 0:
        raise MetainfoError(f"{str(root)!r} holds no data (all files are empty)")
    if piece_length is None:
        piece_length = choose_piece_length(total)
    check_piece_length(piece_length)
    entries = layout_files(name, sources, piece_length, version, single_file=single)
    disk_paths = [
        None if e.pad else str(on_disk[e.path if single else e.path[1:]]) for e in entries
    ]
    hasher = _PayloadHasher(entries, disk_paths, piece_length, version, chunk_bytes)
    hasher.run(workers or max(os.cpu_count() or 1, 1), progress, total)
    if options is None:
        options = TorrentOptions()
    if options.creation_date is None:
        options = dataclasses.replace(options, creation_date=int(time.time()))
    return build_torrent(
        name,
        entries,
        piece_length,
        version,
        single_file=single,
        v1_piece_hashes=hasher.v1_hashes,
        pieces_roots=hasher.roots,
        piece_layers=hasher.layers,
        options=options,
    )


class _PayloadHasher:
    """Plans chunks of whole pieces and hashes them on a thread pool."""

    def __init__(
        self,
        entries: Sequence[FileEntry],
        disk_paths: Sequence[str | None],
        piece_length: int,
        version: TorrentVersion,
        chunk_bytes: int,
    ) -> None:
        self.entries = entries
        self.disk_paths = disk_paths
        self.piece_length = piece_length
        self.version = version
        self.chunk_bytes = max(piece_length, chunk_bytes // piece_length * piece_length)
        # Parts divide a piece (powers of two) so no 16 KiB leaf spans two reads.
        self.part_bytes = min(piece_length, max(BLOCK_SIZE, READ_BYTES))
        self.v1_hashes: list[bytes] = []
        self.roots: dict[int, bytes] = {}
        self.layers: dict[bytes, bytes] = {}
        self._local = threading.local()

    # -- planning -------------------------------------------------------------

    def chunks(self) -> Iterator[_Chunk]:
        if self.version is TorrentVersion.V1:
            yield from self._v1_chunks()
            return
        space_end = max(e.offset + e.length for e in self.entries)
        for index, entry in enumerate(self.entries):
            if entry.pad or not entry.length:
                continue
            disk = self.disk_paths[index]
            assert disk is not None
            for start in range(0, entry.length, self.chunk_bytes):
                length = min(self.chunk_bytes, entry.length - start)
                chunk_start = entry.offset + start
                padded = -(-length // self.piece_length) * self.piece_length
                v1_length = min(padded, space_end - chunk_start)
                yield _Chunk(
                    first_piece=chunk_start // self.piece_length,
                    segments=(_Segment(disk, start, length),),
                    v1_length=v1_length if self.version.has_v1 else 0,
                    file_index=index,
                    data_length=length,
                )

    def _v1_chunks(self) -> Iterator[_Chunk]:
        space_end = sum(e.length for e in self.entries)
        position = 0
        k = 0
        while position < space_end:
            end = min(position + self.chunk_bytes, space_end)
            segments: list[_Segment] = []
            cursor = position
            while cursor < end:
                entry = self.entries[k]
                entry_end = entry.offset + entry.length
                if cursor >= entry_end:
                    k += 1
                    continue
                step = min(entry_end, end) - cursor
                segments.append(_Segment(self.disk_paths[k], cursor - entry.offset, step))
                cursor += step
            length = end - position
            yield _Chunk(position // self.piece_length, tuple(segments), length, -1, length)
            position = end

    # -- hashing ----------------------------------------------------------------

    def _buffer(self) -> memoryview:
        buffer: bytearray | None = getattr(self._local, "buffer", None)
        if buffer is None or len(buffer) < self.part_bytes:
            buffer = bytearray(self.part_bytes)
            self._local.buffer = buffer
        return memoryview(buffer)

    def hash_chunk(self, chunk: _Chunk) -> _ChunkHashes:
        """Hashes of a chunk's bytes; v1 pieces past the data are zero-padded (BEP 47).

        Each part is read into the per-thread buffer and hashed by SHA-1 and
        SHA-256 while it is still in the CPU cache.
        """
        with _ChunkReader(chunk.segments) as reader:
            return self._hash_parts(chunk, reader)

    def _hash_parts(self, chunk: _Chunk, reader: _ChunkReader) -> _ChunkHashes:
        sha1 = hashlib.sha1
        sha256 = hashlib.sha256
        pl = self.piece_length
        part = self.part_bytes
        size = chunk.data_length
        want_v2 = self.version.has_v2
        per_piece = pl // BLOCK_SIZE
        buffer = self._buffer()
        v1: list[bytes] = []
        v2_pieces: list[bytes] = []
        blocks: list[bytes] = []
        for i in range(0, max(chunk.v1_length, size), pl):
            data_end = min(i + pl, size)
            v1_end = min(i + pl, chunk.v1_length)
            v1_hash = sha1() if v1_end > i else None
            leaves: list[bytes] = []
            for p in range(i, data_end, part):
                view = buffer[: min(part, data_end - p)]
                reader.read_into(p, view)
                if v1_hash is not None:
                    v1_hash.update(view)
                if want_v2:
                    leaves += [
                        sha256(view[j : j + BLOCK_SIZE]).digest()
                        for j in range(0, len(view), BLOCK_SIZE)
                    ]
            if v1_hash is not None:
                if v1_end > data_end:
                    v1_hash.update(bytes(v1_end - max(data_end, i)))
                v1.append(v1_hash.digest())
            if leaves:
                v2_pieces.append(leaves[0] if per_piece == 1 else merkle_root(leaves, per_piece))
                blocks.extend(leaves)
        if not want_v2 or self.entries[chunk.file_index].length > pl:
            blocks = []
        return _ChunkHashes(v1, v2_pieces, blocks)

    def run(self, workers: int, progress: ProgressCallback | None, total: int) -> None:
        """Hash every chunk on ``workers`` threads that feed themselves.

        Each worker takes the next chunk from the shared plan itself, so a
        busy calling thread (or a scheduler slow to wake it) never starves
        the workers; the calling thread only reorders results and reports
        progress.  Only hashes are kept, so memory does not grow with the
        payload's bytes.
        """
        plan = enumerate(self.chunks())
        plan_lock = threading.Lock()
        stop = threading.Event()
        finished: queue.SimpleQueue[tuple[int, _Chunk, _ChunkHashes] | BaseException | None]
        finished = queue.SimpleQueue()

        def work() -> None:
            try:
                while not stop.is_set():
                    with plan_lock:
                        taken = next(plan, None)
                    if taken is None:
                        break
                    finished.put((taken[0], taken[1], self.hash_chunk(taken[1])))
            except BaseException as error:  # handed to the calling thread
                stop.set()
                finished.put(error)
            finally:
                finished.put(None)

        threads = [
            threading.Thread(target=work, name=f"hash-{i}", daemon=True)
            for i in range(max(workers, 1))
        ]
        done = 0
        layers: dict[int, list[bytes]] = {}
        small_blocks: dict[int, list[bytes]] = {}
        waiting: dict[int, tuple[_Chunk, _ChunkHashes]] = {}
        next_index = 0
        first_error: BaseException | None = None
        try:
            for thread in threads:
                thread.start()
            running = len(threads)
            while running:
                item = finished.get()
                if item is None:
                    running -= 1
                    continue
                if isinstance(item, BaseException):
                    first_error = first_error or item
                    continue
                index, chunk, result = item
                waiting[index] = (chunk, result)
                done += chunk.data_length
                if progress is not None and first_error is None:
                    progress(done, total)
                while next_index in waiting:  # v1 hashes in piece order
                    chunk, result = waiting.pop(next_index)
                    next_index += 1
                    self.v1_hashes.extend(result.v1)
                    if chunk.file_index >= 0:
                        layers.setdefault(chunk.file_index, []).extend(result.v2_pieces)
                        small_blocks.setdefault(chunk.file_index, []).extend(result.v2_blocks)
        finally:
            stop.set()
            for thread in threads:
                if thread.is_alive():
                    thread.join()
        if first_error is not None:
            raise first_error
        for index, layer in layers.items():
            length = self.entries[index].length
            if length <= self.piece_length:
                root = file_root_from_blocks(small_blocks[index])
            else:
                root = root_from_piece_layer(layer, self.piece_length)
                self.layers[root] = b"".join(layer)
            self.roots[index] = root


class _ChunkReader:
    """Reads byte ranges of a chunk (its segments laid end to end) from disk.

    Opens each file once per chunk and asks the kernel to read the chunk's
    range ahead (``POSIX_FADV_WILLNEED``), which matters on a cold cache.
    A file shorter than planned raises ``MetainfoError``.
    """

    def __init__(self, segments: Sequence[_Segment]) -> None:
        self._segments = segments
        self._starts: list[int] = []
        self._fds: dict[str, int] = {}
        position = 0
        for segment in segments:
            self._starts.append(position)
            position += segment.length

    def __enter__(self) -> _ChunkReader:
        try:
            for segment in self._segments:
                if segment.path is None or segment.path in self._fds:
                    continue
                fd = os.open(segment.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
                self._fds[segment.path] = fd
                if hasattr(os, "posix_fadvise"):
                    os.posix_fadvise(fd, segment.offset, segment.length, os.POSIX_FADV_WILLNEED)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def read_into(self, position: int, target: memoryview) -> None:
        """Fill ``target`` with the chunk's bytes from ``position``."""
        index = bisect.bisect_right(self._starts, position) - 1
        filled = 0
        while filled < len(target):
            segment = self._segments[index]
            inside = position + filled - self._starts[index]
            step = min(segment.length - inside, len(target) - filled)
            piece = target[filled : filled + step]
            if segment.path is None:
                piece[:] = bytes(step)
            else:
                _read_exactly(self._fds[segment.path], segment.path, segment.offset + inside, piece)
            filled += step
            index += 1


def _read_exactly(fd: int, path: str, offset: int, target: memoryview) -> None:
    """Fill ``target`` from ``fd`` at ``offset``; the file must not shrink meanwhile."""
    filled = 0
    while filled < len(target):
        count = os.preadv(fd, [target[filled:]], offset + filled)
        if count == 0:
            raise MetainfoError(f"{path!r} became shorter while it was being hashed")
        filled += count
