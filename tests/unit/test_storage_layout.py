"""Piece space -> file spans: boundaries, pad files, v2 alignment gaps."""

from __future__ import annotations

from typing import NamedTuple

import pytest

from servent.codec.piece_layout import GAP, FileSpan, PieceLayout
from servent.errors import MetainfoError


class F(NamedTuple):
    length: int
    offset: int
    pad: bool = False


def concat(*lengths: int, pads: tuple[int, ...] = ()) -> list[F]:
    files, offset = [], 0
    for i, length in enumerate(lengths):
        files.append(F(length, offset, i in pads))
        offset += length
    return files


def test_single_file_last_piece_is_short() -> None:
    layout = PieceLayout(concat(100), 32)
    assert layout.num_pieces == 4
    assert [layout.piece_size(i) for i in range(4)] == [32, 32, 32, 4]
    assert layout.spans(3) == [FileSpan(0, 96, 4, False)]


def test_piece_spanning_three_files() -> None:
    layout = PieceLayout(concat(10, 5, 30), 32)
    assert layout.spans(0) == [
        FileSpan(0, 0, 10, False),
        FileSpan(1, 0, 5, False),
        FileSpan(2, 0, 17, False),
    ]
    assert layout.spans(1) == [FileSpan(2, 17, 13, False)]
    assert layout.piece_files(0) == [0, 1, 2]
    assert layout.file_pieces(2) == range(0, 2)


def test_block_inside_a_piece_maps_to_the_right_file_offset() -> None:
    layout = PieceLayout(concat(10, 5, 30), 32)
    assert layout.spans(0, 12, 8) == [FileSpan(1, 2, 3, False), FileSpan(2, 0, 5, False)]
    with pytest.raises(ValueError):
        layout.spans(1, 10, 10)


def test_inside_one_file_names_the_file_only_for_a_piece_of_one_real_file() -> None:
    layout = PieceLayout(concat(70, 10, 30, pads=(1,)), 32)  # pieces 0..3; file 1 is a pad
    assert layout.inside_one_file(0) == (0, 0)
    assert layout.inside_one_file(1) == (0, 32)
    assert layout.inside_one_file(2) is None  # file 0's tail, the pad file, file 2
    assert layout.inside_one_file(3) == (2, 16)  # the short last piece


def test_inside_one_file_of_a_single_file_torrent_is_every_piece_and_bounds_checked() -> None:
    layout = PieceLayout([F(0, 0), F(70, 0)], 32)  # an empty file, then the only real one
    assert [layout.inside_one_file(p) for p in range(3)] == [(1, 0), (1, 32), (1, 64)]
    for outside in (-1, 3):
        with pytest.raises(IndexError):
            layout.inside_one_file(outside)
    pad_only_tail = PieceLayout(concat(40, 24, pads=(1,)), 32)  # a pad file: no shortcut
    assert pad_only_tail.inside_one_file(1) is None


def test_pad_files_are_flagged_and_not_counted_as_piece_files() -> None:
    # file 0: 20 bytes, pad 12 bytes to the 32 boundary, file 2: 40 bytes
    layout = PieceLayout(concat(20, 12, 40, pads=(1,)), 32)
    assert layout.spans(0) == [FileSpan(0, 0, 20, False), FileSpan(1, 0, 12, True)]
    assert layout.piece_files(0) == [0]
    assert layout.file_pieces(2) == range(1, 3)


def test_v2_alignment_gap_is_excluded_from_the_piece() -> None:
    # v2: file 0 of 40 bytes in pieces 0-1, file 1 starts at the next boundary (64)
    layout = PieceLayout([F(40, 0), F(70, 64)], 32)
    assert layout.num_pieces == 5
    assert layout.piece_size(1) == 8
    assert layout.spans(1) == [FileSpan(0, 32, 8, False)]
    assert layout.spans(2) == [FileSpan(1, 0, 32, False)]
    assert layout.piece_size(4) == 6
    assert layout.space_spans(32, 40) == [
        FileSpan(0, 32, 8, False),
        FileSpan(GAP, 0, 24, True),
        FileSpan(1, 0, 8, False),
    ]


def test_zero_length_files_own_no_piece() -> None:
    layout = PieceLayout([F(10, 0), F(0, 10), F(10, 10)], 8)
    assert layout.file_pieces(1) == range(0)
    assert layout.spans(1) == [FileSpan(0, 8, 2, False), FileSpan(2, 0, 6, False)]


def test_overlapping_files_are_refused() -> None:
    with pytest.raises(MetainfoError):
        PieceLayout([F(10, 0), F(10, 5)], 8)


def test_piece_index_out_of_range() -> None:
    layout = PieceLayout(concat(10), 8)
    with pytest.raises(IndexError):
        layout.piece_size(2)
