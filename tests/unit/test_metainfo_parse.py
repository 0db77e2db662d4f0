"""Parsing torrents: fields, v1/v2/hybrid views, and refusal of hostile input."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from servent.codec.bencode import encode
from servent.codec.merkle import BLOCK_SIZE, block_hashes, file_root, piece_layer
from servent.codec.metainfo import parse_info, parse_torrent
from servent.errors import MetainfoError, UnsafePathError

PL = BLOCK_SIZE


def v1_multi(paths: list[list[str]], lengths: list[int] | None = None, **top: Any) -> bytes:
    lengths = lengths or [1] * len(paths)
    total = sum(lengths)
    info = {
        "name": "root",
        "piece length": PL,
        "pieces": b"\x00" * 20 * (-(-total // PL)),
        "files": [{"length": n, "path": p} for p, n in zip(paths, lengths, strict=True)],
    }
    return encode({"info": info, **top})


def v2_single(data: bytes, *, layers: dict[bytes, bytes] | None = None) -> bytes:
    root = file_root(data)
    info = {
        "name": "f.bin",
        "piece length": PL,
        "meta version": 2,
        "file tree": {"f.bin": {"": {"length": len(data), "pieces root": root}}},
    }
    if layers is None:
        layers = {root: b"".join(piece_layer(block_hashes(data), PL))} if len(data) > PL else {}
    top: dict[str, Any] = {"info": info}
    if layers:
        top["piece layers"] = layers
    return encode(top)


def test_v1_single_file_with_every_outer_field() -> None:
    info = {"name": "movie.mkv", "piece length": PL, "length": PL + 1,
            "pieces": b"a" * 40, "private": 1}
    data = encode({
        "announce": "http://t/announce",
        "announce-list": [["http://t/announce", "udp://u:1"], ["http://b/announce"]],
        "url-list": "http://seed/",
        "comment": "hello",
        "created by": "test",
        "creation date": 1700000000,
        "info": info,
    })
    meta = parse_torrent(data)
    assert meta.name == "movie.mkv"
    assert meta.files[0].path == ("movie.mkv",)
    assert meta.total_length == PL + 1
    assert meta.num_pieces == 2
    assert meta.piece_size(0) == PL and meta.piece_size(1) == 1
    assert meta.trackers == (("http://t/announce", "udp://u:1"), ("http://b/announce",))
    assert meta.web_seeds == ("http://seed/",)
    assert meta.private
    assert (meta.comment, meta.created_by, meta.creation_date) == ("hello", "test", 1700000000)
    assert meta.info_hash_v1 == hashlib.sha1(encode(info)).digest()
    assert meta.info_hash_v2 is None
    assert meta.is_v1 and not meta.is_v2 and not meta.is_hybrid
    assert meta.wire_info_hash == meta.info_hash_v1
    assert parse_torrent(meta.to_bytes()) == meta


def test_v1_multi_file_paths_start_with_the_torrent_folder() -> None:
    meta = parse_torrent(v1_multi([["a"], ["sub", "b"]], [3, 5], announce="http://x/announce"))
    assert [f.path for f in meta.files] == [("root", "a"), ("root", "sub", "b")]
    assert [f.offset for f in meta.files] == [0, 3]
    assert meta.trackers == (("http://x/announce",),)
    assert "xt=urn:btih:" + meta.wire_info_hash.hex() in meta.magnet()


def test_v2_single_file_checks_and_keeps_piece_layers() -> None:
    data = bytes(range(256)) * 200  # 51200 bytes: 4 pieces of 16 KiB
    meta = parse_torrent(v2_single(data))
    assert meta.is_v2 and not meta.is_v1
    assert meta.files[0].pieces_root == file_root(data)
    assert meta.num_pieces == 4
    assert meta.piece_hashes == ()
    layer = meta.piece_layers[file_root(data)]
    assert len(layer) == 4 * 32
    assert meta.piece_size(3) == len(data) - 3 * PL
    assert meta.wire_info_hash == meta.info_hash_v2[:20]  # type: ignore[index]
    assert parse_torrent(meta.to_bytes()) == meta


def test_v2_piece_layer_that_does_not_match_its_root_is_refused() -> None:
    data = b"z" * (3 * PL)
    with pytest.raises(MetainfoError, match="does not match"):
        parse_torrent(v2_single(data, layers={file_root(data): b"\x01" * 96}))


def test_v2_missing_piece_layer_is_refused_in_a_torrent_but_allowed_for_bare_info() -> None:
    data = b"z" * (3 * PL)
    raw = v2_single(data, layers={})
    with pytest.raises(MetainfoError, match="lacks"):
        parse_torrent(raw)
    meta = parse_torrent(v2_single(data))
    assert parse_info(meta.info_bytes).info_hash_v2 == meta.info_hash_v2


def test_v2_only_files_start_on_piece_boundaries() -> None:
    tree = {
        "a": {"": {"length": 10, "pieces root": b"r" * 32}},
        "b": {"": {"length": 0}},
        "c": {"": {"length": 5, "pieces root": b"s" * 32}},
    }
    info = {"name": "d", "piece length": PL, "meta version": 2, "file tree": tree}
    meta = parse_torrent(encode({"info": info}))
    assert [(f.path, f.offset) for f in meta.files] == [
        (("d", "a"), 0), (("d", "b"), PL), (("d", "c"), PL)
    ]
    assert meta.num_pieces == 2
    assert [meta.piece_size(i) for i in range(2)] == [10, 5]


def test_hybrid_whose_v1_and_v2_files_differ_is_refused() -> None:
    tree = {"a": {"": {"length": 10, "pieces root": b"r" * 32}}}
    info = {"name": "a", "piece length": PL, "meta version": 2, "file tree": tree,
            "length": 11, "pieces": b"p" * 20}
    with pytest.raises(MetainfoError, match="differs"):
        parse_torrent(encode({"info": info}))


@pytest.mark.parametrize(
    "component",
    ["..", ".", "", "a/b", "a\\b", "C:", "x:stream", "CON", "con.txt", "lpt1", "nul .tar",
     "a\x00b", "tab\there", "dot.", "space ", "q?", "p|q", "<x>", "x" * 256],
)
def test_hostile_path_component_is_refused_naming_the_path(component: str) -> None:
    with pytest.raises(UnsafePathError) as excinfo:
        parse_torrent(v1_multi([["ok", component]]))
    assert "root/ok/" in str(excinfo.value)


def test_hostile_torrent_name_is_refused() -> None:
    info = {"name": "..", "piece length": PL, "length": 1, "pieces": b"a" * 20}
    with pytest.raises(UnsafePathError):
        parse_torrent(encode({"info": info}))


def test_paths_equal_after_case_folding_are_refused() -> None:
    with pytest.raises(UnsafePathError, match="same file"):
        parse_torrent(v1_multi([["Readme"], ["README"]]))


def test_file_that_is_also_a_folder_is_refused() -> None:
    with pytest.raises(UnsafePathError, match="file and a folder"):
        parse_torrent(v1_multi([["a"], ["a", "b"]]))


def test_unicode_names_are_kept() -> None:
    meta = parse_torrent(v1_multi([["Ünïcødé ✓"], ["日本語", "ファイル"]]))
    assert meta.files[1].path == ("root", "日本語", "ファイル")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "not a torrent"),
        (b"i1e", "not a dictionary"),
        (b"d3:fooi1ee", "no 'info'"),
        (encode({"info": {"name": "a", "piece length": PL, "length": 1}}), "neither"),
        (encode({"info": {"name": "a", "piece length": 0, "length": 1, "pieces": b""}}),
         "piece length"),
        (encode({"info": {"name": "a", "piece length": PL, "length": 1, "pieces": b"x" * 19}}),
         "multiple of 20"),
        (encode({"info": {"name": "a", "piece length": PL, "length": PL + 1,
                          "pieces": b"x" * 20}}), "need 2"),
        (encode({"info": {"name": "a", "piece length": PL, "meta version": 3,
                          "file tree": {}}}), "meta version"),
        (encode({"info": {"name": b"\xff", "piece length": PL, "length": 1,
                          "pieces": b"x" * 20}}), "UTF-8"),
    ],
)
def test_malformed_torrent_gives_a_specific_error(data: bytes, message: str) -> None:
    with pytest.raises(MetainfoError, match=message):
        parse_torrent(data)


def test_pad_files_are_flagged_and_excluded_from_the_total() -> None:
    paths = [["a"], [".pad", "16383"], ["b"]]
    info = {
        "name": "root", "piece length": PL, "pieces": b"\x00" * 40,
        "files": [
            {"length": 1, "path": paths[0]},
            {"length": PL - 1, "path": paths[1], "attr": "p"},
            {"length": 1, "path": paths[2]},
        ],
    }
    meta = parse_torrent(encode({"info": info}))
    assert [f.pad for f in meta.files] == [False, True, False]
    assert meta.total_length == 2
    assert [f.path for f in meta.payload_files] == [("root", "a"), ("root", "b")]



def test_v2_info_claiming_petabytes_in_tiny_pieces_is_refused() -> None:
    tree = {"f": {"": {"length": 1 << 49, "pieces root": b"r" * 32}}}
    info = {"name": "f", "piece length": PL, "meta version": 2, "file tree": tree}
    meta_bytes = encode(info)
    with pytest.raises(MetainfoError, match="pieces, more than"):
        parse_info(meta_bytes)
