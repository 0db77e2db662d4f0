"""Building the info dictionary of a new torrent (v1, v2 or hybrid).

Pure: the caller (``servent.storage.torrent_creator``) reads and hashes the
payload; this module decides the layout (file order, BEP 47 pad files, v2
piece alignment), chooses a piece length and encodes the torrent.  The
result is parsed back with :func:`parse_torrent`, so whatever we create has
passed the same validation as what we receive.

Layout choices follow libtorrent so both produce identical info-hashes for
the same payload and piece length: files sorted by path (the v2 file tree
order); in hybrid torrents every non-empty file that does not end on a piece
boundary is followed by a pad file ``.pad/<size>`` with attribute ``p``
(including the last file, unless it is the only one), so v1 pieces and v2
pieces cover the same bytes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from servent.codec.bencode import Encodable, encode
from servent.codec.merkle import BLOCK_SIZE, next_power_of_two
from servent.codec.metainfo.model import FileEntry, Metainfo
from servent.codec.metainfo.parse import parse_torrent
from servent.codec.metainfo.paths import check_path, check_unique_paths
from servent.errors import MetainfoError

MIN_PIECE_LENGTH = BLOCK_SIZE
MAX_AUTO_PIECE_LENGTH = 16 * 1024 * 1024
TARGET_PIECES = 1500

_Dict = dict[bytes | str, Encodable]


class TorrentVersion(enum.Enum):
    V1 = "v1"
    V2 = "v2"
    HYBRID = "hybrid"

    @property
    def has_v1(self) -> bool:
        return self is not TorrentVersion.V2

    @property
    def has_v2(self) -> bool:
        return self is not TorrentVersion.V1


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A payload file: ``path`` inside the torrent (without the torrent name)."""

    path: tuple[str, ...]
    length: int
    attr: str = ""


def choose_piece_length(total_length: int) -> int:
    """A power of two >= 16 KiB giving about ``TARGET_PIECES`` pieces (max 16 MiB)."""
    wanted = -(-max(total_length, 1) // TARGET_PIECES)
    return min(max(MIN_PIECE_LENGTH, next_power_of_two(wanted)), MAX_AUTO_PIECE_LENGTH)


def check_piece_length(piece_length: int) -> None:
    """Refuse piece lengths that are not a power of two from 16 KiB to 256 MiB."""
    if piece_length < MIN_PIECE_LENGTH or piece_length & (piece_length - 1):
        raise MetainfoError(f"piece length {piece_length} is not a power of two >= 16 KiB")
    if piece_length > 1 << 28:
        raise MetainfoError(f"piece length {piece_length} is larger than 256 MiB")


def _sort_key(source: SourceFile) -> tuple[bytes, ...]:
    return tuple(c.encode("utf-8") for c in source.path)


def layout_files(
    name: str,
    sources: Sequence[SourceFile],
    piece_length: int,
    version: TorrentVersion,
    *,
    single_file: bool,
) -> list[FileEntry]:
    """File entries in torrent order with offsets in piece space (and pad files)."""
    if single_file and len(sources) != 1:
        raise MetainfoError("a single-file torrent has exactly one file")
    ordered = list(sources) if single_file else sorted(sources, key=_sort_key)
    entries: list[FileEntry] = []
    offset = 0
    for source in ordered:
        path = (name,) if single_file else (name, *source.path)
        check_path(path)
        entries.append(FileEntry(path, source.length, offset, attr=source.attr))
        offset += source.length
        tail = source.length % piece_length
        if not source.length or not tail:
            continue
        if version is TorrentVersion.HYBRID and len(ordered) > 1:
            pad = piece_length - tail
            entries.append(FileEntry((name, ".pad", str(pad)), pad, offset, pad=True, attr="p"))
            offset += pad
        elif version is TorrentVersion.V2:
            offset += piece_length - tail
    check_unique_paths(e.path for e in entries if not e.pad)
    return entries


@dataclass(frozen=True, slots=True)
class TorrentOptions:
    """Everything outside the payload that goes into a new torrent."""

    trackers: tuple[tuple[str, ...], ...] = ()
    web_seeds: tuple[str, ...] = ()
    private: bool = False
    comment: str | None = None
    created_by: str | None = None
    creation_date: int | None = None


def build_torrent(
    name: str,
    entries: Sequence[FileEntry],
    piece_length: int,
    version: TorrentVersion,
    *,
    single_file: bool,
    v1_piece_hashes: Sequence[bytes] = (),
    pieces_roots: Mapping[int, bytes] | None = None,
    piece_layers: Mapping[bytes, bytes] | None = None,
    options: TorrentOptions | None = None,
) -> Metainfo:
    """Encode a torrent from its layout and hashes; return it parsed back.

    ``pieces_roots`` maps an index into ``entries`` to that file's v2 root;
    ``piece_layers`` maps roots of files longer than a piece to their layer.
    """
    if options is None:
        options = TorrentOptions()
    info: _Dict = {b"name": name, b"piece length": piece_length}
    if options.private:
        info[b"private"] = 1
    if version.has_v1:
        info[b"pieces"] = b"".join(v1_piece_hashes)
        if single_file:
            info[b"length"] = entries[0].length
            if entries[0].attr:
                info[b"attr"] = entries[0].attr
        else:
            info[b"files"] = [_v1_file(e) for e in entries]
    if version.has_v2:
        roots = pieces_roots or {}
        info[b"meta version"] = 2
        info[b"file tree"] = _file_tree(entries, roots, single_file)
    top: _Dict = {b"info": info}
    if options.trackers:
        top[b"announce"] = options.trackers[0][0]
        if len(options.trackers) > 1 or len(options.trackers[0]) > 1:
            top[b"announce-list"] = [list(t) for t in options.trackers]
    if options.web_seeds:
        top[b"url-list"] = list(options.web_seeds)
    if options.comment is not None:
        top[b"comment"] = options.comment
    if options.created_by is not None:
        top[b"created by"] = options.created_by
    if options.creation_date is not None:
        top[b"creation date"] = options.creation_date
    if version.has_v2 and piece_layers:
        top[b"piece layers"] = dict(piece_layers.items())
    return parse_torrent(encode(top))


def _v1_file(entry: FileEntry) -> _Dict:
    item: _Dict = {b"length": entry.length, b"path": list(entry.path[1:])}
    if entry.attr:
        item[b"attr"] = entry.attr
    return item


def _file_tree(
    entries: Sequence[FileEntry], roots: Mapping[int, bytes], single_file: bool
) -> _Dict:
    tree: _Dict = {}
    for index, entry in enumerate(entries):
        if entry.pad:
            continue
        leaf: _Dict = {b"length": entry.length}
        if entry.length:
            root = roots.get(index)
            if root is None:
                raise MetainfoError(f"no pieces root for {'/'.join(entry.path)!r}")
            leaf[b"pieces root"] = root
        if entry.attr:
            leaf[b"attr"] = entry.attr
        node = tree
        components = entry.path if single_file else entry.path[1:]
        for component in components[:-1]:
            child = node.setdefault(component.encode("utf-8"), {})
            assert isinstance(child, dict)
            node = child
        node[components[-1].encode("utf-8")] = {b"": leaf}
    return tree
