"""Creating a torrent from files on disk: read, hash on every core, build.

Hashing is split into chunks of whole pieces (a few MiB) that worker threads
read with ``os.preadv`` into preallocated per-thread buffers and hash with
``hashlib``; both release the GIL on large buffers, so two cores hash in
parallel.  At most ``2 * workers`` chunks are in flight, which bounds memory
to a few tens of MiB whatever the payload size.  The layout and encoding
live in :mod:`servent.codec.metainfo.build`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import mmap
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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

logger = logging.getLogger(__name__)

#: ``progress(bytes_hashed, total_bytes)``, called from the creating thread.
ProgressCallback = Callable[[int, int], None]

DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024
#: Files are mapped in windows of this size, shared by the chunks inside them.
WINDOW_BYTES = 64 * 1024 * 1024
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
    window: _Window | None = None  # the mapping holding the (single) segment, if any


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
        dirs.sort()
        base = Path(folder)
        for filename in sorted(names):
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
        self.v1_hashes: list[bytes] = []
        self.roots: dict[int, bytes] = {}
        self.layers: dict[bytes, bytes] = {}
        self._local = threading.local()
        self._windows: list[_Window] = []
        self._window_key: tuple[str, int] | None = None

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
                    window=self._window_for(disk, entry.length, start, length),
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
            window = None
            only = segments[0]
            if len(segments) == 1 and only.path is not None:
                window = self._window_for(only.path, self.entries[k].length, only.offset,
                                          only.length)
            yield _Chunk(position // self.piece_length, tuple(segments), length, -1, length,
                         window)
            position = end

    def _window_for(self, path: str, file_length: int, offset: int, length: int) -> _Window | None:
        """The shared mapping covering ``offset``+``length`` of ``path`` (None: read instead).

        Chunks come in file order, so a new window seals the previous one,
        which is unmapped as soon as its last chunk is hashed.
        """
        start = offset - offset % WINDOW_BYTES
        if offset + length > start + WINDOW_BYTES:
            return None  # straddles two windows (v1 chunks only): copy it
        key = (path, start)
        if key == self._window_key and self._windows:
            window = self._windows[-1]
            window.pending += 1
            return window
        self.seal_windows()
        self._window_key = key
        try:
            window = _Window(path, start, min(WINDOW_BYTES, file_length - start))
        except (OSError, ValueError):  # a file system without mmap: read instead
            logger.debug("cannot map %s; reading it instead", path)
            self._window_key = None
            return None
        window.pending = 1
        self._windows.append(window)
        return window

    def seal_windows(self) -> None:
        """No more chunks will use the open windows: unmap those already done."""
        for window in self._windows:
            window.sealed = True
        self._windows = [w for w in self._windows if not w.close_if_done()]

    def chunk_done(self, chunk: _Chunk) -> None:
        if chunk.window is not None:
            chunk.window.pending -= 1
            if chunk.window.close_if_done():
                self._windows.remove(chunk.window)

    def close_windows(self) -> None:
        for window in self._windows:
            window.close()
        self._windows = []

    # -- hashing ----------------------------------------------------------------

    def _buffer(self) -> bytearray:
        buffer: bytearray | None = getattr(self._local, "buffer", None)
        if buffer is None or len(buffer) < self.chunk_bytes:
            buffer = bytearray(self.chunk_bytes)
            self._local.buffer = buffer
        return buffer

    def hash_chunk(self, chunk: _Chunk) -> _ChunkHashes:
        segments = chunk.segments
        if chunk.window is not None:
            # Hash straight from the page cache through the shared mapping: no copy.
            data = chunk.window.slice(segments[0].offset, segments[0].length)
            try:
                return self._hash_data(chunk, data)
            finally:
                data.release()
        view = memoryview(self._buffer())
        position = 0
        for segment in segments:
            target = view[position : position + segment.length]
            if segment.path is None:
                target[:] = bytes(segment.length)
            else:
                _read_exactly(segment.path, segment.offset, target)
            position += segment.length
        return self._hash_data(chunk, view[:position])

    def _hash_data(self, chunk: _Chunk, data: memoryview) -> _ChunkHashes:
        """Hashes of a chunk's bytes; v1 pieces past the data are zero-padded (BEP 47).

        Piece by piece, so the SHA-256 pass reads what the SHA-1 pass just
        brought into the CPU cache instead of fetching it from memory again.
        """
        sha1 = hashlib.sha1
        sha256 = hashlib.sha256
        pl = self.piece_length
        size = len(data)
        want_v2 = self.version.has_v2
        per_piece = pl // BLOCK_SIZE
        v1: list[bytes] = []
        v2_pieces: list[bytes] = []
        blocks: list[bytes] = []
        for i in range(0, max(chunk.v1_length, size), pl):
            piece = data[i : i + pl]
            v1_end = min(i + pl, chunk.v1_length)
            if i + len(piece) >= v1_end > i:
                v1.append(sha1(piece[: v1_end - i]).digest())
            elif v1_end > i:
                padded = sha1(piece)
                padded.update(bytes(v1_end - i - len(piece)))
                v1.append(padded.digest())
            if want_v2 and len(piece):
                leaves = [sha256(piece[j : j + BLOCK_SIZE]).digest()
                          for j in range(0, len(piece), BLOCK_SIZE)]
                v2_pieces.append(leaves[0] if per_piece == 1 else merkle_root(leaves, per_piece))
                blocks.extend(leaves)
        if not want_v2 or self.entries[chunk.file_index].length > pl:
            blocks = []
        return _ChunkHashes(v1, v2_pieces, blocks)

    def run(self, workers: int, progress: ProgressCallback | None, total: int) -> None:
        done = 0
        layers: dict[int, list[bytes]] = {}
        small_blocks: dict[int, list[bytes]] = {}
        pending: list[tuple[_Chunk, Future[_ChunkHashes]]] = []
        in_flight = max(2 * workers, 2)

        def collect(chunk: _Chunk, result: _ChunkHashes) -> None:
            nonlocal done
            self.v1_hashes.extend(result.v1)
            if chunk.file_index >= 0:
                layers.setdefault(chunk.file_index, []).extend(result.v2_pieces)
                small_blocks.setdefault(chunk.file_index, []).extend(result.v2_blocks)
            done += chunk.data_length
            self.chunk_done(chunk)
            if progress is not None:
                progress(done, total)

        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hash") as pool:
                for chunk in self.chunks():
                    pending.append((chunk, pool.submit(self.hash_chunk, chunk)))
                    if len(pending) >= in_flight:
                        first, future = pending.pop(0)
                        collect(first, future.result())
                self.seal_windows()
                for chunk, future in pending:
                    collect(chunk, future.result())
        finally:
            self.close_windows()
        for index, layer in layers.items():
            length = self.entries[index].length
            if length <= self.piece_length:
                root = file_root_from_blocks(small_blocks[index])
            else:
                root = root_from_piece_layer(layer, self.piece_length)
                self.layers[root] = b"".join(layer)
            self.roots[index] = root


class _Window:
    """A read-only mapping of ``length`` bytes of ``path`` from ``offset`` (page aligned).

    Mapping avoids copying every byte out of the page cache (a tenth of the
    CPU time of hashing), and one mapping shared by the chunks inside it
    avoids a map/unmap per chunk.  The size is checked first so a file that
    shrank since the scan is an error rather than a fault on access.
    """

    def __init__(self, path: str, offset: int, length: int) -> None:
        fd = os.open(path, os.O_RDONLY)
        try:
            if os.fstat(fd).st_size < offset + length:
                raise MetainfoError(f"{path!r} became shorter while it was being hashed")
            self._map = mmap.mmap(fd, length, prot=mmap.PROT_READ, offset=offset)
        finally:
            os.close(fd)
        self.offset = offset
        self._view = memoryview(self._map)
        self.pending = 0
        self.sealed = False
        self.closed = False

    def slice(self, offset: int, length: int) -> memoryview:
        start = offset - self.offset
        return self._view[start : start + length]

    def close_if_done(self) -> bool:
        if self.sealed and self.pending <= 0:
            self.close()
            return True
        return False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._view.release()
        try:
            self._map.close()
        except BufferError:  # a slice still alive (in a traceback); the GC unmaps it
            logger.debug("mapping still referenced at close")


def _read_exactly(path: str, offset: int, target: memoryview) -> None:
    """Fill ``target`` from ``path`` at ``offset``; the file must not shrink meanwhile."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        filled = 0
        while filled < len(target):
            count = os.preadv(fd, [target[filled:]], offset + filled)
            if count == 0:
                raise MetainfoError(f"{path!r} became shorter while it was being hashed")
            filled += count
    finally:
        os.close(fd)
