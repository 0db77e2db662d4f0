"""Where the bytes of a piece live: pure mapping of piece space to file spans.

A torrent's *piece space* is the files laid end to end at their ``offset``
(``servent.codec.metainfo.FileEntry.offset``): for v1 and hybrid torrents the
plain concatenation including BEP 47 pad files, for v2-only torrents each file
starting on a piece boundary (BEP 52), which leaves alignment gaps after a
file's last piece.  Piece ``i`` covers ``[i * piece_length, ...)``; its size is
the distance to the last real byte (file or pad) inside that window, so a v2
file's last piece is short and never includes the gap.

Pad files and gaps map to spans flagged ``pad``: they read as zeros and are
never written.  Zero-length files own no bytes and no pieces.  No I/O here, so
storage, the picker and tests share one definition.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from servent.errors import MetainfoError

GAP = -1
"""``FileSpan.file_index`` of bytes that belong to no file (v2 alignment gap)."""


class LayoutFile(Protocol):
    """What the layout needs from a file entry (``FileEntry`` satisfies it)."""

    @property
    def length(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def pad(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class FileSpan:
    """``length`` bytes at ``file_offset`` of file ``file_index``.

    ``pad`` spans (pad files and gaps, ``file_index == GAP`` for a gap) read as
    zeros and are never stored.
    """

    file_index: int
    file_offset: int
    length: int
    pad: bool


class PieceLayout:
    """Piece <-> file mapping of one torrent."""

    def __init__(self, files: Sequence[LayoutFile], piece_length: int) -> None:
        if piece_length <= 0:
            raise MetainfoError("piece length must be positive")
        self.piece_length = piece_length
        self._index: list[int] = []  # file indices with bytes, by offset
        self._starts: list[int] = []
        self._lengths = [f.length for f in files]
        self._offsets = [f.offset for f in files]
        self._pads = [f.pad for f in files]
        end = 0
        for i, f in enumerate(files):
            if f.length < 0 or f.offset < 0:
                raise MetainfoError(f"file {i} has a negative length or offset")
            if f.length == 0:
                continue
            if f.offset < end:
                raise MetainfoError(f"file {i} overlaps the previous file in piece space")
            self._index.append(i)
            self._starts.append(f.offset)
            end = f.offset + f.length
        self.space_end = end
        self.num_pieces = (end + piece_length - 1) // piece_length
        # One real file from offset 0 and nothing else with bytes: every piece lies inside it.
        self._one_file = (
            self._index[0]
            if len(self._index) == 1 and self._starts[0] == 0 and not self._pads[self._index[0]]
            else None
        )
        # No gap anywhere (v1 and hybrid): a piece is its whole window, no file lookup.
        self._contiguous = all(
            start == (self._starts[k - 1] + self._lengths[self._index[k - 1]] if k else 0)
            for k, start in enumerate(self._starts)
        )

    # -- pieces -------------------------------------------------------------

    def piece_size(self, piece: int) -> int:
        """Bytes of piece ``piece`` (its hashed data; trailing gaps excluded)."""
        start = self._piece_start(piece)
        window_end = min(start + self.piece_length, self.space_end)
        if self._contiguous:
            return window_end - start
        # The last file that starts before the window end bounds the data.
        k = bisect_right(self._starts, window_end - 1) - 1
        file_end = self._starts[k] + self._lengths[self._index[k]]
        return max(min(window_end, file_end) - start, 0)

    def spans(self, piece: int, offset: int = 0, length: int | None = None) -> list[FileSpan]:
        """Spans covering ``length`` bytes at ``offset`` inside ``piece``, in order."""
        size = self.piece_size(piece)
        if length is None:
            length = size - offset
        if offset < 0 or length < 0 or offset + length > size:
            raise ValueError(f"range {offset}+{length} outside piece {piece} of {size} bytes")
        return self.space_spans(piece * self.piece_length + offset, length)

    def space_spans(self, position: int, length: int) -> list[FileSpan]:
        """Spans covering ``length`` bytes of piece space from ``position``."""
        result: list[FileSpan] = []
        end = position + length
        k = max(bisect_right(self._starts, position) - 1, 0)
        while position < end:
            if k >= len(self._starts):
                result.append(FileSpan(GAP, 0, end - position, True))
                break
            start = self._starts[k]
            file_index = self._index[k]
            if position < start:  # a gap before this file
                step = min(start, end) - position
                result.append(FileSpan(GAP, 0, step, True))
                position += step
                continue
            file_end = start + self._lengths[file_index]
            if position >= file_end:
                k += 1
                continue
            step = min(file_end, end) - position
            result.append(FileSpan(file_index, position - start, step, self._pads[file_index]))
            position += step
            k += 1
        return result

    def inside_one_file(self, piece: int) -> tuple[int, int] | None:
        """``(file_index, file_offset)`` when all of ``piece`` lies in one real file, else None.

        The usual piece, found without building spans.  ``None`` for a piece
        across files, or touching a pad file.
        """
        if not 0 <= piece < self.num_pieces:
            raise IndexError(f"piece {piece} outside 0..{self.num_pieces - 1}")
        start = piece * self.piece_length
        if self._one_file is not None:  # a single-file torrent: no lookup
            return self._one_file, start
        starts = self._starts
        k = bisect_right(starts, start) - 1
        if k < 0:
            return None
        file_index = self._index[k]
        offset = start - starts[k]
        if self._contiguous:  # piece_size inlined: the window, bounded by the data's end
            size = min(start + self.piece_length, self.space_end) - start
        else:
            size = self.piece_size(piece)
        if self._pads[file_index] or offset + size > self._lengths[file_index]:
            return None
        return file_index, offset

    def piece_files(self, piece: int) -> list[int]:
        """Indices of the real (non-pad) files holding bytes of ``piece``."""
        return [s.file_index for s in self.spans(piece) if not s.pad]

    # -- files --------------------------------------------------------------

    def file_pieces(self, file_index: int) -> range:
        """The pieces holding bytes of file ``file_index`` (empty for zero length)."""
        length = self._lengths[file_index]
        if length == 0:
            return range(0)
        first = self._offsets[file_index] // self.piece_length
        last = (self._offsets[file_index] + length - 1) // self.piece_length
        return range(first, last + 1)

    def _piece_start(self, piece: int) -> int:
        if not 0 <= piece < self.num_pieces:
            raise IndexError(f"piece {piece} outside 0..{self.num_pieces - 1}")
        return piece * self.piece_length
