"""The parsed form of a torrent: :class:`Metainfo` and its :class:`FileEntry` list."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import TYPE_CHECKING

from servent.codec.bencode import Encodable, encode

if TYPE_CHECKING:
    from servent.codec.magnet import Magnet


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file of a torrent, in info-dict order.

    ``path`` is relative to the download folder: for a multi-file torrent it
    starts with the torrent's folder name, for a single-file torrent it is
    ``(name,)``.  ``offset`` is the file's first byte in *piece space* (v1 and
    hybrid: the concatenation of all files including pad files; v2-only: every
    file starts on a piece boundary).  ``pad`` marks BEP 47 pad files, which
    are zeros and never stored.  ``pieces_root`` is the v2 merkle root (None
    for v1-only torrents and for empty files).  ``attr`` holds the BEP 47
    attribute letters (``p`` pad, ``x`` executable, ``h`` hidden, ``l`` link).
    """

    path: tuple[str, ...]
    length: int
    offset: int
    pad: bool = False
    pieces_root: bytes | None = None
    attr: str = ""


def _empty_layers() -> Mapping[bytes, bytes]:
    return MappingProxyType({})


@dataclass(frozen=True)
class Metainfo:
    """A validated torrent (v1, v2 or hybrid).  Build with ``parse_torrent``."""

    name: str
    piece_length: int
    files: tuple[FileEntry, ...]
    total_length: int
    num_pieces: int
    info_bytes: bytes
    piece_hashes: tuple[bytes, ...] = ()
    piece_layers: Mapping[bytes, bytes] = field(default_factory=_empty_layers)
    info_hash_v1: bytes | None = None
    info_hash_v2: bytes | None = None
    trackers: tuple[tuple[str, ...], ...] = ()
    web_seeds: tuple[str, ...] = ()
    private: bool = False
    comment: str | None = None
    created_by: str | None = None
    creation_date: int | None = None
    _piece_starts: tuple[int, ...] = field(default=(), repr=False, compare=False)
    _piece_file_ends: tuple[int, ...] = field(default=(), repr=False, compare=False)
    _space_end: int = field(default=0, repr=False, compare=False)

    def __post_init__(self) -> None:
        space_end = max((f.offset + f.length for f in self.files), default=0)
        object.__setattr__(self, "_space_end", space_end)
        if self.info_hash_v2 is not None and self.info_hash_v1 is None:
            # v2-only: pieces never span files; remember where each file's pieces start.
            starts: list[int] = []
            ends: list[int] = []
            for entry in self.files:
                if entry.length and not entry.pad:
                    starts.append(entry.offset // self.piece_length)
                    ends.append(entry.offset + entry.length)
            object.__setattr__(self, "_piece_starts", tuple(starts))
            object.__setattr__(self, "_piece_file_ends", tuple(ends))

    # -- kind ---------------------------------------------------------------

    @property
    def is_v1(self) -> bool:
        """Has a v1 (SHA-1) view, alone or as part of a hybrid."""
        return self.info_hash_v1 is not None

    @property
    def is_v2(self) -> bool:
        """Has a v2 (SHA-256 merkle) view, alone or as part of a hybrid."""
        return self.info_hash_v2 is not None

    @property
    def is_hybrid(self) -> bool:
        return self.is_v1 and self.is_v2

    @property
    def wire_info_hash(self) -> bytes:
        """The 20 bytes used in handshakes, trackers and the DHT."""
        if self.info_hash_v1 is not None:
            return self.info_hash_v1
        assert self.info_hash_v2 is not None
        return self.info_hash_v2[:20]

    @property
    def payload_files(self) -> tuple[FileEntry, ...]:
        """The files without BEP 47 pad files."""
        return tuple(f for f in self.files if not f.pad)

    # -- pieces -------------------------------------------------------------

    def piece_size(self, index: int) -> int:
        """Bytes hashed for piece ``index`` (the last piece of a file may be short)."""
        if not 0 <= index < self.num_pieces:
            raise IndexError(f"piece {index} outside 0..{self.num_pieces - 1}")
        start = index * self.piece_length
        if self._piece_starts:
            k = bisect_right(self._piece_starts, index) - 1
            return min(self.piece_length, self._piece_file_ends[k] - start)
        return min(self.piece_length, self._space_end - start)

    def piece_payload_size(self, index: int) -> int:
        """Bytes of real files in piece ``index``: its size less the BEP 47 pad bytes in it.

        What users count as progress (a hybrid torrent's 200 MiB of files are
        200 MiB, not 200 MiB plus the zeros that align each file to a piece)."""
        return max(self.piece_size(index) - self._pad_bytes_per_piece.get(index, 0), 0)

    def block_payload_size(self, index: int, begin: int, length: int) -> int:
        """Bytes of real files in a block of piece ``index`` (pad bytes end a piece)."""
        pad = self._pad_bytes_per_piece.get(index)
        if not pad:
            return length
        pad_start = self.piece_size(index) - pad
        return length - max(0, begin + length - max(begin, pad_start))

    @cached_property
    def _pad_bytes_per_piece(self) -> dict[int, int]:
        pads: dict[int, int] = {}
        length = self.piece_length
        for entry in self.files:
            if not entry.pad or not entry.length:
                continue
            start, end = entry.offset, entry.offset + entry.length
            for piece in range(start // length, min((end - 1) // length + 1, self.num_pieces)):
                overlap = min(end, (piece + 1) * length) - max(start, piece * length)
                pads[piece] = pads.get(piece, 0) + overlap
        return pads

    # -- output -------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The torrent file: our outer fields around the info dict as received."""
        outer: dict[bytes, Encodable] = {}
        if self.trackers:
            outer[b"announce"] = self.trackers[0][0]
            if len(self.trackers) > 1 or len(self.trackers[0]) > 1:
                outer[b"announce-list"] = [list(tier) for tier in self.trackers]
        if self.comment is not None:
            outer[b"comment"] = self.comment
        if self.created_by is not None:
            outer[b"created by"] = self.created_by
        if self.creation_date is not None:
            outer[b"creation date"] = self.creation_date
        if self.piece_layers:
            outer[b"piece layers"] = {k: v for k, v in self.piece_layers.items()}
        if self.web_seeds:
            outer[b"url-list"] = list(self.web_seeds)
        chunks = [b"d"]
        inserted = False
        for key in sorted(outer):
            if not inserted and key > b"info":
                chunks.append(b"4:info" + self.info_bytes)
                inserted = True
            chunks.append(encode(key) + encode(outer[key]))
        if not inserted:
            chunks.append(b"4:info" + self.info_bytes)
        chunks.append(b"e")
        return b"".join(chunks)

    def to_magnet(self) -> Magnet:
        from servent.codec.magnet import Magnet

        return Magnet(
            info_hash_v1=self.info_hash_v1,
            info_hash_v2=self.info_hash_v2,
            display_name=self.name,
            trackers=tuple(url for tier in self.trackers for url in tier),
            web_seeds=self.web_seeds,
        )

    def magnet(self) -> str:
        """A magnet link with both info-hashes, the name and the trackers."""
        return self.to_magnet().to_uri()

