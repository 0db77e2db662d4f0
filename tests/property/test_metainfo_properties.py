"""Hypothesis: torrents round-trip, hostile torrents and paths are refused cleanly."""

from __future__ import annotations

import os
import posixpath
import subprocess
import sys
import tracemalloc
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.codec.bencode import BValue, decode, encode
from servent.codec.merkle import root_from_piece_layer
from servent.codec.metainfo import parse_torrent
from servent.codec.metainfo.build import (
    SourceFile,
    TorrentOptions,
    TorrentVersion,
    build_torrent,
    layout_files,
)
from servent.codec.metainfo.paths import check_path
from servent.errors import MetainfoError, ServentError, UnsafePathError

PL = 16384
REPO = Path(__file__).resolve().parents[2]



def is_safe(name: str) -> bool:
    try:
        check_path((name,))
    except UnsafePathError:
        return False
    return True


names = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12).filter(
    is_safe
)


@st.composite
def payloads(draw: st.DrawFn) -> list[SourceFile]:
    paths = draw(st.lists(st.lists(names, min_size=1, max_size=3).map(tuple), min_size=1,
                          max_size=6, unique_by=lambda p: tuple(c.casefold() for c in p)))
    files: list[SourceFile] = []
    taken: set[tuple[str, ...]] = set()
    for path in paths:
        folded = tuple(c.casefold() for c in path)
        prefixes = {folded[:i] for i in range(1, len(folded))}
        if prefixes & taken or any(t[: len(folded)] == folded for t in taken):
            continue
        taken.add(folded)
        files.append(SourceFile(path, draw(st.integers(0, 4 * PL + 3))))
    return files


def fake_torrent(name: str, sources: list[SourceFile], version: TorrentVersion,
                 single: bool) -> bytes:
    """A valid torrent with made-up (but self-consistent) hashes."""
    entries = layout_files(name, sources, PL, version, single_file=single)
    space = max(e.offset + e.length for e in entries)
    roots: dict[int, bytes] = {}
    layers: dict[bytes, bytes] = {}
    for index, entry in enumerate(entries):
        if entry.pad or not entry.length:
            continue
        count = -(-entry.length // PL)
        layer = [bytes([index % 256, i % 256]) * 16 for i in range(count)]
        root = root_from_piece_layer(layer, PL) if count > 1 else layer[0]
        roots[index] = root
        if count > 1:
            layers[root] = b"".join(layer)
    meta = build_torrent(
        name, entries, PL, version, single_file=single,
        v1_piece_hashes=[bytes(20)] * (-(-space // PL)), pieces_roots=roots,
        piece_layers=layers, options=TorrentOptions(trackers=(("http://t/announce",),)),
    )
    return meta.to_bytes()


@given(payloads(), st.sampled_from(list(TorrentVersion)), names)
@settings(max_examples=150)
def test_built_torrents_parse_back_to_the_same_files(
    sources: list[SourceFile], version: TorrentVersion, name: str
) -> None:
    if sum(s.length for s in sources) == 0:
        return
    data = fake_torrent(name, sources, version, single=False)
    meta = parse_torrent(data)
    # A v2-only tree with one top-level file reads as a single-file torrent (as in libtorrent).
    lone = version is TorrentVersion.V2 and len(sources) == 1 and len(sources[0].path) == 1
    paths = [f.path if lone else f.path[1:] for f in meta.payload_files]
    assert sorted(paths) == sorted(s.path for s in sources)
    assert meta.total_length == sum(s.length for s in sources)
    assert meta.to_bytes() == data
    assert sum(meta.piece_size(i) for i in range(meta.num_pieces)) >= meta.total_length


def seeds() -> list[bytes]:
    files = [SourceFile(("a",), 3 * PL - 1), SourceFile(("d", "e"), 0), SourceFile(("z",), 5)]
    return [fake_torrent("n", files, v, single=False) for v in TorrentVersion] + [
        fake_torrent("s", [SourceFile(("s",), PL + 1)], v, single=True) for v in TorrentVersion
    ]


SEEDS = seeds()


@given(st.sampled_from(SEEDS), st.data())
@settings(max_examples=400)
def test_mutated_torrents_raise_only_servent_errors(seed: bytes, data: st.DataObject) -> None:
    buf = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(buf) - 1))
        action = data.draw(st.integers(0, 2))
        if action == 0:
            buf[pos] = data.draw(st.integers(0, 255))
        elif action == 1:
            del buf[pos : pos + data.draw(st.integers(1, 32))]
        else:
            buf[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    try:
        meta = parse_torrent(bytes(buf))
    except ServentError:
        return
    assert parse_torrent(meta.to_bytes()).info_bytes == meta.info_bytes


bvalues: st.SearchStrategy[BValue] = st.recursive(
    st.integers(-3, 2**40) | st.binary(max_size=40) | st.sampled_from([b"..", b"", b"/x", b"p"]),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from([b"", b"length", b"path", b"pieces root", b"attr", b"a"]),
                      children, max_size=4),
    max_leaves=12,
)


def replace_somewhere(value: BValue, data: st.DataObject, depth: int = 0) -> BValue:
    """Replace one nested value (chosen by hypothesis) with a random one."""
    if depth > 6 or data.draw(st.integers(0, 3)) == 0:
        return data.draw(bvalues)
    if isinstance(value, dict) and value:
        key = data.draw(st.sampled_from(sorted(value)))
        return {**value, key: replace_somewhere(value[key], data, depth + 1)}
    if isinstance(value, list) and value:
        index = data.draw(st.integers(0, len(value) - 1))
        return [*value[:index], replace_somewhere(value[index], data, depth + 1),
                *value[index + 1:]]
    return data.draw(bvalues)


@given(st.sampled_from(SEEDS), st.data())
@settings(max_examples=400)
def test_structurally_mutated_torrents_raise_only_metainfo_errors(
    seed: bytes, data: st.DataObject
) -> None:
    mutated = replace_somewhere(decode(seed), data)
    try:
        meta = parse_torrent(encode(mutated))
    except MetainfoError:
        return
    for entry in meta.payload_files:
        check_path(entry.path)


@given(st.sampled_from(SEEDS), st.data())
@settings(max_examples=60)
def test_parsing_hostile_torrents_stays_within_memory_bounds(
    seed: bytes, data: st.DataObject
) -> None:
    mutated = encode(replace_somewhere(decode(seed), data))
    tracemalloc.start()
    try:
        parse_torrent(mutated)
    except MetainfoError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert peak < 64 * len(mutated) + (1 << 20)


@given(st.binary(max_size=300))
@settings(max_examples=300)
def test_random_bytes_raise_only_metainfo_errors(blob: bytes) -> None:
    try:
        meta = parse_torrent(blob)
    except MetainfoError:
        return
    assert meta.is_v1 or meta.is_v2


@given(st.lists(st.text(max_size=8), min_size=1, max_size=5).map(tuple))
@settings(max_examples=500)
def test_accepted_paths_stay_inside_the_download_folder(path: tuple[str, ...]) -> None:
    try:
        check_path(path)
    except UnsafePathError:
        return
    for flavour in ("/", "\\"):
        joined = flavour.join(("base", *path))
        normalised = posixpath.normpath(joined.replace("\\", "/"))
        assert normalised.startswith("base/")
        assert not any(part in ("", ".", "..") for part in normalised.split("/"))
    assert all("\x00" not in c and ":" not in c for c in path)


def test_fuzz_harnesses_run(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for harness in ("fuzz.bencode", "fuzz.metainfo"):
        result = subprocess.run([sys.executable, "-m", harness, "--runs", "2000", "--seed", "7"],
                                cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0, result.stderr
        assert "no crash" in result.stdout

