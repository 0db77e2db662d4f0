"""Build real .torrent files (v1, v2, hybrid) for storage tests via bencode.

Parsed with ``servent.codec.metainfo.parse_torrent``, so storage is tested against
the real ``Metainfo`` rather than a stand-in.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from servent.codec import bencode, merkle
from servent.codec.metainfo import Metainfo, parse_torrent

Files = list[tuple[str, bytes]]
"""(relative path with '/' separators, content) in torrent order."""


def random_files(rng: random.Random, sizes: list[int]) -> Files:
    return [(f"dir{i % 2}/file{i}.bin", rng.randbytes(size)) for i, size in enumerate(sizes)]


def _v2_tree_and_layers(
    files: Files, piece_length: int
) -> tuple[dict[bytes, object], dict[bytes, bytes]]:
    tree: dict[bytes, object] = {}
    layers: dict[bytes, bytes] = {}
    for path, data in files:
        node = tree
        for part in path.split("/"):
            node = node.setdefault(part.encode(), {})  # type: ignore[assignment]
        entry: dict[bytes, object] = {b"length": len(data)}
        if data:
            leaves = merkle.block_hashes(data)
            root = merkle.file_root_from_blocks(leaves)
            entry[b"pieces root"] = root
            if len(data) > piece_length:
                layers[root] = b"".join(merkle.piece_layer(leaves, piece_length))
        node[b""] = entry
    return tree, layers


def make_torrent(
    files: Files, piece_length: int, version: str = "v1", name: str = "payload"
) -> bytes:
    """A torrent for ``files`` under folder ``name`` (single file if one file named ``name``)."""
    if version != "v1":  # the v2 file tree is sorted; hybrid v1 lists must match it
        files = sorted(files, key=lambda f: [p.encode() for p in f[0].split("/")])
    single = len(files) == 1 and files[0][0] == name
    info: dict[bytes, object] = {b"name": name.encode(), b"piece length": piece_length}
    top: dict[bytes, object] = {b"announce": b"http://127.0.0.1:1/announce"}
    if version in ("v1", "hybrid"):
        stream = bytearray()
        entries: list[dict[bytes, object]] = []
        for i, (path, data) in enumerate(files):
            stream += data
            entries.append({b"length": len(data), b"path": [p.encode() for p in path.split("/")]})
            gap = -len(stream) % piece_length
            if version == "hybrid" and gap and i < len(files) - 1:
                stream += bytes(gap)
                entries.append(
                    {b"attr": b"p", b"length": gap, b"path": [b".pad", str(gap).encode()]}
                )
        info[b"pieces"] = b"".join(
            hashlib.sha1(stream[i : i + piece_length]).digest()
            for i in range(0, len(stream), piece_length)
        )
        if single:
            info[b"length"] = len(files[0][1])
        else:
            info[b"files"] = entries
    if version in ("v2", "hybrid"):
        tree, layers = _v2_tree_and_layers(files, piece_length)
        info[b"meta version"] = 2
        info[b"file tree"] = tree
        top[b"piece layers"] = layers
    top[b"info"] = info
    return bencode.encode(top)  # type: ignore[arg-type]


def make_metainfo(
    files: Files, piece_length: int, version: str = "v1", name: str = "payload"
) -> Metainfo:
    return parse_torrent(make_torrent(files, piece_length, version, name))


def expected_path(root: Path, name: str, path: str, *, single: bool = False) -> Path:
    return root / name if single else root / name / path


def piece_bytes(meta: Metainfo, files: Files, index: int) -> bytes:
    """Piece ``index`` assembled from ``files`` through the metainfo's own offsets."""
    contents = {tuple(p.split("/")): d for p, d in files}
    start = index * meta.piece_length
    size = meta.piece_size(index)
    out = bytearray(size)
    for entry in meta.files:
        lo = max(entry.offset, start)
        hi = min(entry.offset + entry.length, start + size)
        if lo >= hi or entry.pad:
            continue
        rel = entry.path[1:] if entry.path[0] == meta.name and len(entry.path) > 1 else entry.path
        data = contents.get(tuple(rel), contents.get(entry.path, b""))
        if not data and len(files) == 1:
            data = files[0][1]
        out[lo - start : hi - start] = data[lo - entry.offset : hi - entry.offset]
    return bytes(out)
