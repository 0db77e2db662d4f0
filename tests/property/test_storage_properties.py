"""Hypothesis: layout and Bitfield agree with simple models; storage round-trips any torrent."""

from __future__ import annotations

import asyncio
import random
import tempfile
from pathlib import Path
from typing import NamedTuple

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servent.codec.bitfield import Bitfield
from servent.codec.piece_layout import GAP, PieceLayout
from servent.storage import TorrentStorage
from storage_torrents import make_metainfo, piece_bytes, random_files


class F(NamedTuple):
    length: int
    offset: int
    pad: bool


@st.composite
def layouts(draw: st.DrawFn) -> tuple[list[F], int, bool]:
    piece_length = draw(st.sampled_from([1, 3, 16, 64]))
    lengths = draw(st.lists(st.integers(0, 300), min_size=1, max_size=8))
    aligned = draw(st.booleans())  # v2-style: each file starts on a piece boundary
    files, offset = [], 0
    for length in lengths:
        pad = not aligned and draw(st.booleans()) and length > 0
        files.append(F(length, offset, pad))
        offset += length
        if aligned:
            offset += -offset % piece_length
    if all(f.length == 0 for f in files):
        files.append(F(1, offset, False))
    return files, piece_length, aligned


@given(layouts())
def test_spans_of_every_piece_tile_piece_space_in_order(case: tuple[list[F], int, bool]) -> None:
    files, piece_length, aligned = case
    layout = PieceLayout(files, piece_length)
    covered = 0
    for piece in range(layout.num_pieces):
        size = layout.piece_size(piece)
        assert 0 < size <= piece_length
        spans = layout.spans(piece)
        assert sum(s.length for s in spans) == size
        position = piece * piece_length
        for span in spans:
            if span.file_index != GAP:
                f = files[span.file_index]
                assert f.offset + span.file_offset == position
                assert span.file_offset + span.length <= f.length
                assert span.pad == f.pad
            position += span.length
        covered += sum(s.length for s in spans if s.file_index != GAP)
    assert covered == sum(f.length for f in files)
    if not aligned:
        assert all(s.file_index != GAP for p in range(layout.num_pieces) for s in layout.spans(p))


@given(layouts())
def test_piece_size_ends_at_the_last_real_byte_of_its_window(
    case: tuple[list[F], int, bool],
) -> None:
    files, piece_length, _ = case
    layout = PieceLayout(files, piece_length)
    space_end = max(f.offset + f.length for f in files if f.length)
    for piece in range(layout.num_pieces):
        start = piece * piece_length
        window_end = min(start + piece_length, space_end)
        last = max(
            min(f.offset + f.length, window_end)
            for f in files
            if f.length and f.offset < window_end and f.offset + f.length > start
        )
        assert layout.piece_size(piece) == last - start


@given(layouts())
def test_inside_one_file_is_a_piece_of_one_real_span(case: tuple[list[F], int, bool]) -> None:
    files, piece_length, _ = case
    layout = PieceLayout(files, piece_length)
    for piece in range(layout.num_pieces):
        spans = layout.spans(piece)
        alone = len(spans) == 1 and not spans[0].pad
        expected = (spans[0].file_index, spans[0].file_offset) if alone else None
        assert layout.inside_one_file(piece) == expected


@given(layouts())
def test_file_pieces_are_exactly_the_pieces_whose_spans_name_the_file(
    case: tuple[list[F], int, bool],
) -> None:
    files, piece_length, _ = case
    layout = PieceLayout(files, piece_length)
    for index in range(len(files)):
        named = {
            p for p in range(layout.num_pieces) for s in layout.spans(p) if s.file_index == index
        }
        assert named == set(layout.file_pieces(index))


@given(st.integers(0, 200), st.sets(st.integers(0, 199)), st.sets(st.integers(0, 199)))
def test_bitfield_behaves_like_a_set(size: int, a: set[int], b: set[int]) -> None:
    a = {i for i in a if i < size}
    b = {i for i in b if i < size}
    fa, fb = Bitfield.from_indices(size, a), Bitfield.from_indices(size, b)
    assert list(fa) == sorted(a)
    assert fa.count() == len(a)
    assert set(fa.missing()) == set(range(size)) - a
    assert set(fa & fb) == a & b
    assert set(fa | fb) == a | b
    assert set(fa - fb) == a - b
    assert fa.issubset(fb) == (a <= b)
    assert Bitfield.from_bytes(fa.to_bytes(), size) == fa


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(0, 70000), min_size=1, max_size=5),
    version=st.sampled_from(["v1", "v2", "hybrid"]),
    seed=st.integers(0, 2**32 - 1),
    corrupt=st.sets(st.integers(0, 20), max_size=4),
)
def test_any_torrent_written_in_any_order_reads_back_identical(
    sizes: list[int], version: str, seed: int, corrupt: set[int]
) -> None:
    rng = random.Random(seed)
    files = random_files(rng, sizes)
    if all(size == 0 for size in sizes):
        files.append(("last.bin", b"x"))
    meta = make_metainfo(files, 16384, version)
    order = list(range(meta.num_pieces))
    rng.shuffle(order)

    async def scenario(folder: Path) -> None:
        async with TorrentStorage(meta, folder, verify_both=True) as storage:
            for index in order:
                data = piece_bytes(meta, files, index)
                if index in corrupt:
                    flipped = bytes([data[0] ^ 0xFF]) + data[1:]
                    assert not await storage.write_piece(index, flipped)
                assert await storage.write_piece(index, data)
            for index in order:
                assert await storage.read_piece(index) == piece_bytes(meta, files, index)
            assert storage.is_seed()

    with tempfile.TemporaryDirectory() as temp:
        asyncio.run(scenario(Path(temp)))
        contents = {("payload", *p.split("/")): d for p, d in files}
        for entry in meta.files:
            if not entry.pad:
                assert Path(temp).joinpath(*entry.path).read_bytes() == contents[entry.path]
        assert not list(Path(temp).rglob("*.part"))
