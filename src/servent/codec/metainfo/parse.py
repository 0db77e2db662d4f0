"""Parsing torrent files (BEP 3, 12, 19, 27, 47, 52) into :class:`Metainfo`.

Everything here is hostile input: types are checked, sizes bounded, file
paths validated (see :mod:`.paths`), and v2 piece layers checked against
their merkle roots.  Every failure is a :class:`~servent.errors.MetainfoError`
(or :class:`~servent.errors.UnsafePathError`) with a message naming the field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from types import MappingProxyType

from servent.codec.bencode import BValue, decode_with_raw
from servent.codec.merkle import HASH_SIZE, blocks_per_piece, root_from_piece_layer
from servent.codec.metainfo.model import FileEntry, Metainfo
from servent.codec.metainfo.paths import check_path, check_unique_paths, display_path
from servent.errors import BencodeError, MetainfoError

MAX_PIECE_LENGTH = 1 << 28
MAX_FILES = 1_000_000
MAX_FILE_LENGTH = 1 << 50
#: Bounds the bitfields and piece tables a hostile info dict can make us allocate.
MAX_PIECES = 1 << 22
MAX_TRACKERS = 1000
MAX_TREE_DEPTH = 64
MIN_V2_PIECE_LENGTH = 16384


def parse_torrent(data: bytes | bytearray | memoryview) -> Metainfo:
    """Parse and validate a ``.torrent`` file."""
    try:
        top, info_bytes = decode_with_raw(data, (b"info",))
    except BencodeError as exc:
        raise MetainfoError(f"not a torrent file: {exc}") from exc
    if not isinstance(top, dict):
        raise MetainfoError("not a torrent file: top level is not a dictionary")
    if info_bytes is None:
        raise MetainfoError("torrent has no 'info' dictionary")
    return _build(top, top[b"info"], info_bytes, top.get(b"piece layers"), require_layers=True)


def parse_info(
    info_bytes: bytes, piece_layers: Mapping[bytes, bytes] | None = None
) -> Metainfo:
    """Parse a bare info dictionary (e.g. fetched with ``ut_metadata``).

    Piece layers are optional here: a magnet download gets them from peers.
    """
    try:
        wrapped, raw = decode_with_raw(b"d4:info" + bytes(info_bytes) + b"e", (b"info",))
    except BencodeError as exc:
        raise MetainfoError(f"invalid info dictionary: {exc}") from exc
    assert isinstance(wrapped, dict) and raw is not None
    layers: BValue | None = dict(piece_layers) if piece_layers is not None else None
    return _build({}, wrapped[b"info"], raw, layers, require_layers=False)


# -- typed field access ------------------------------------------------------


def _dict(value: BValue | None, what: str) -> dict[bytes, BValue]:
    if not isinstance(value, dict):
        raise MetainfoError(f"'{what}' is missing or not a dictionary")
    return value


def _int(value: BValue | None, what: str, low: int = 0, high: int = 1 << 62) -> int:
    if not isinstance(value, int):
        raise MetainfoError(f"'{what}' is missing or not an integer")
    if not low <= value <= high:
        raise MetainfoError(f"'{what}' = {value} is outside {low}..{high}")
    return value


def _bytes(value: BValue | None, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise MetainfoError(f"'{what}' is missing or not a string")
    return value


def _text(value: BValue | None, what: str) -> str:
    raw = _bytes(value, what)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetainfoError(f"'{what}' is not valid UTF-8: {raw[:60]!r}") from exc


def _optional_text(value: BValue | None) -> str | None:
    """Informational strings: never fatal, undecodable bytes replaced."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return None


def _component_list(value: BValue | None, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise MetainfoError(f"'{what}' is missing or not a non-empty list")
    return tuple(_text(c, what) for c in value)


# -- the whole torrent ---------------------------------------------------------


def _build(
    top: dict[bytes, BValue],
    info_value: BValue,
    info_bytes: bytes,
    layers_value: BValue | None,
    *,
    require_layers: bool,
) -> Metainfo:
    info = _dict(info_value, "info")
    name = _text(info.get(b"name.utf-8", info.get(b"name")), "name")
    check_path((name,))
    piece_length = _int(info.get(b"piece length"), "piece length", 1, MAX_PIECE_LENGTH)
    has_v1 = b"pieces" in info
    meta_version = info.get(b"meta version")
    has_v2 = meta_version is not None
    if has_v2 and meta_version != 2:
        raise MetainfoError(f"unsupported 'meta version' {meta_version!r}")
    if not has_v1 and not has_v2:
        raise MetainfoError("torrent has neither 'pieces' (v1) nor 'meta version' 2 (v2)")

    v1_files: list[FileEntry] | None = None
    piece_hashes: tuple[bytes, ...] = ()
    if has_v1:
        v1_files = _v1_files(info, name)
        piece_hashes = _v1_pieces(info, v1_files, piece_length)

    v2_files: list[FileEntry] | None = None
    layers: dict[bytes, bytes] = {}
    if has_v2:
        if piece_length < MIN_V2_PIECE_LENGTH or piece_length & (piece_length - 1):
            raise MetainfoError(f"v2 'piece length' {piece_length} is not a power of two >= 16 KiB")
        v1_single = None if not has_v1 else b"files" not in info
        v2_files = _v2_files(info, name, piece_length, v1_single)
        layers = _piece_layers(layers_value, v2_files, piece_length, require=require_layers)

    if v1_files is not None and v2_files is not None:
        files = _merge_hybrid(v1_files, v2_files, piece_length)
    elif v1_files is not None:
        files = v1_files
    else:
        assert v2_files is not None
        files = v2_files
    check_unique_paths(f.path for f in files if not f.pad)

    num_pieces = (
        len(piece_hashes) if has_v1 else sum(-(-f.length // piece_length) for f in files)
    )
    if num_pieces > MAX_PIECES:
        raise MetainfoError(f"torrent has {num_pieces} pieces, more than {MAX_PIECES}")

    return Metainfo(
        name=name,
        piece_length=piece_length,
        files=tuple(files),
        total_length=sum(f.length for f in files if not f.pad),
        num_pieces=num_pieces,
        info_bytes=info_bytes,
        piece_hashes=piece_hashes,
        piece_layers=MappingProxyType(layers),
        info_hash_v1=hashlib.sha1(info_bytes).digest() if has_v1 else None,
        info_hash_v2=hashlib.sha256(info_bytes).digest() if has_v2 else None,
        trackers=_trackers(top),
        web_seeds=_web_seeds(top),
        private=info.get(b"private") == 1,
        comment=_optional_text(top.get(b"comment.utf-8", top.get(b"comment"))),
        created_by=_optional_text(top.get(b"created by")),
        creation_date=_optional_int(top.get(b"creation date")),
    )


def _optional_int(value: BValue | None) -> int | None:
    return value if isinstance(value, int) else None


# -- v1 ------------------------------------------------------------------------


def _v1_files(info: dict[bytes, BValue], name: str) -> list[FileEntry]:
    if b"files" in info:
        if b"length" in info:
            raise MetainfoError("'info' has both 'length' and 'files'")
        raw_files = info[b"files"]
        if not isinstance(raw_files, list) or not raw_files:
            raise MetainfoError("'files' is not a non-empty list")
        if len(raw_files) > MAX_FILES:
            raise MetainfoError(f"more than {MAX_FILES} files")
        files: list[FileEntry] = []
        offset = 0
        for index, raw in enumerate(raw_files):
            entry = _dict(raw, f"files[{index}]")
            length = _int(entry.get(b"length"), f"files[{index}].length", 0, MAX_FILE_LENGTH)
            path_value = entry.get(b"path.utf-8", entry.get(b"path"))
            path = (name, *_component_list(path_value, f"files[{index}].path"))
            check_path(path)
            attr = _attr(entry.get(b"attr"), f"files[{index}].attr")
            files.append(FileEntry(path, length, offset, pad="p" in attr, attr=attr))
            offset += length
        return files
    length = _int(info.get(b"length"), "length", 0, MAX_FILE_LENGTH)
    attr = _attr(info.get(b"attr"), "attr")
    return [FileEntry((name,), length, 0, attr=attr)]


def _attr(value: BValue | None, what: str) -> str:
    if value is None:
        return ""
    text = _text(value, what)
    if len(text) > 16:
        raise MetainfoError(f"'{what}' is longer than 16 characters")
    return text


def _v1_pieces(
    info: dict[bytes, BValue], files: list[FileEntry], piece_length: int
) -> tuple[bytes, ...]:
    pieces = _bytes(info.get(b"pieces"), "pieces")
    if len(pieces) % 20:
        raise MetainfoError(f"'pieces' length {len(pieces)} is not a multiple of 20")
    space = sum(f.length for f in files)
    expected = -(-space // piece_length)
    if len(pieces) // 20 != expected:
        raise MetainfoError(
            f"'pieces' holds {len(pieces) // 20} hashes but the files need {expected}"
        )
    return tuple(pieces[i : i + 20] for i in range(0, len(pieces), 20))


# -- v2 ------------------------------------------------------------------------


def _v2_files(
    info: dict[bytes, BValue], name: str, piece_length: int, v1_single: bool | None
) -> list[FileEntry]:
    """The v2 file tree in order; paths as in v1 (``v1_single``) or, for v2-only,
    single-file when the tree holds one file at its top (as libtorrent reads it)."""
    tree = _dict(info.get(b"file tree"), "file tree")
    if not tree:
        raise MetainfoError("'file tree' is empty")
    leaves: list[tuple[tuple[str, ...], dict[bytes, BValue]]] = []
    _walk_tree(tree, (), leaves, 0)
    single = len(leaves) == 1 and len(leaves[0][0]) == 1 if v1_single is None else v1_single
    files: list[FileEntry] = []
    offset = 0
    for rel_path, leaf in leaves:
        path = rel_path if single else (name, *rel_path)
        check_path(path)
        shown = display_path(path)
        length = _int(leaf.get(b"length"), f"length of {shown}", 0, MAX_FILE_LENGTH)
        root: bytes | None = None
        if length:
            root = _bytes(leaf.get(b"pieces root"), f"pieces root of {shown}")
            if len(root) != HASH_SIZE:
                raise MetainfoError(f"'pieces root' of {shown} is not 32 bytes")
        attr = _attr(leaf.get(b"attr"), f"attr of {shown}")
        files.append(FileEntry(path, length, offset, pad=False, pieces_root=root, attr=attr))
        offset += -(-length // piece_length) * piece_length
    return files


def _walk_tree(
    node: dict[bytes, BValue],
    prefix: tuple[str, ...],
    out: list[tuple[tuple[str, ...], dict[bytes, BValue]]],
    depth: int,
) -> None:
    if depth > MAX_TREE_DEPTH:
        raise MetainfoError(f"'file tree' deeper than {MAX_TREE_DEPTH} levels")
    for raw_key, child in node.items():
        key = _text(raw_key, "file tree name")
        path = (*prefix, key)
        child_dict = _dict(child, f"file tree entry {display_path(path)}")
        if b"" in child_dict:
            if len(child_dict) != 1:
                raise MetainfoError(f"file tree entry {display_path(path)} is file and folder")
            out.append((path, _dict(child_dict[b""], f"file {display_path(path)}")))
            if len(out) > MAX_FILES:
                raise MetainfoError(f"more than {MAX_FILES} files")
        elif not key:
            raise MetainfoError(f"file tree folder {display_path(prefix)} has an empty name")
        elif not child_dict:
            raise MetainfoError(f"file tree folder {display_path(path)} is empty")
        else:
            _walk_tree(child_dict, path, out, depth + 1)


def _piece_layers(
    value: BValue | None, files: list[FileEntry], piece_length: int, *, require: bool
) -> dict[bytes, bytes]:
    if value is None:
        value = {}
    layers = _dict(value, "piece layers")
    blocks_per_piece(piece_length)
    result: dict[bytes, bytes] = {}
    for entry in files:
        if entry.length <= piece_length or entry.pieces_root is None:
            continue
        root = entry.pieces_root
        if root in result:
            continue
        layer = layers.get(root)
        shown = display_path(entry.path)
        if layer is None:
            if require:
                raise MetainfoError(f"'piece layers' lacks the layer of {shown}")
            continue
        if not isinstance(layer, bytes):
            raise MetainfoError(f"piece layer of {shown} is not a string")
        pieces = -(-entry.length // piece_length)
        if len(layer) != pieces * HASH_SIZE:
            raise MetainfoError(
                f"piece layer of {shown} has {len(layer)} bytes, expected {pieces * HASH_SIZE}"
            )
        hashes = [layer[i : i + HASH_SIZE] for i in range(0, len(layer), HASH_SIZE)]
        if root_from_piece_layer(hashes, piece_length) != root:
            raise MetainfoError(f"piece layer of {shown} does not match its pieces root")
        result[root] = layer
    return result


# -- hybrid --------------------------------------------------------------------


def _merge_hybrid(
    v1_files: list[FileEntry], v2_files: list[FileEntry], piece_length: int
) -> list[FileEntry]:
    """Check that both views describe the same files; return the v1 layout with roots."""
    real = [f for f in v1_files if not f.pad]
    if len(real) != len(v2_files):
        raise MetainfoError(
            f"hybrid torrent lists {len(real)} v1 files but {len(v2_files)} v2 files"
        )
    roots: dict[int, bytes | None] = {}
    for index, (v1, v2) in enumerate(zip(real, v2_files, strict=True)):
        if v1.path != v2.path or v1.length != v2.length:
            raise MetainfoError(
                f"hybrid torrent: v1 file {display_path(v1.path)} ({v1.length} bytes) differs "
                f"from v2 file {display_path(v2.path)} ({v2.length} bytes)"
            )
        if v1.length and v1.offset % piece_length:
            raise MetainfoError(
                f"hybrid torrent: file {display_path(v1.path)} is not aligned to a piece"
            )
        roots[index] = v2.pieces_root
    merged: list[FileEntry] = []
    real_index = 0
    for entry in v1_files:
        if entry.pad:
            merged.append(entry)
            continue
        merged.append(
            FileEntry(
                entry.path,
                entry.length,
                entry.offset,
                pad=False,
                pieces_root=roots[real_index],
                attr=entry.attr,
            )
        )
        real_index += 1
    return merged


# -- outer fields ----------------------------------------------------------------


def _trackers(top: dict[bytes, BValue]) -> tuple[tuple[str, ...], ...]:
    tiers: list[tuple[str, ...]] = []
    announce_list = top.get(b"announce-list")
    if isinstance(announce_list, list):
        count = 0
        for tier in announce_list:
            if not isinstance(tier, list):
                continue
            urls = tuple(u for u in (_optional_text(x) for x in tier) if u)
            count += len(urls)
            if count > MAX_TRACKERS:
                raise MetainfoError(f"more than {MAX_TRACKERS} trackers")
            if urls:
                tiers.append(urls)
    if not tiers:
        announce = _optional_text(top.get(b"announce"))
        if announce:
            tiers.append((announce,))
    return tuple(tiers)


def _web_seeds(top: dict[bytes, BValue]) -> tuple[str, ...]:
    value = top.get(b"url-list")
    items = value if isinstance(value, list) else [value]
    seeds = tuple(u for u in (_optional_text(x) for x in items[:MAX_TRACKERS]) if u)
    return seeds
