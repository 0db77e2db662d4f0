"""Bitfield: BEP 3 wire form, validation of peers' bitfields, counting, iteration."""

from __future__ import annotations

import pytest

from servent.codec.bitfield import Bitfield
from servent.errors import BitfieldError


def test_piece_zero_is_the_high_bit_of_byte_zero() -> None:
    field = Bitfield(10)
    field.set(0)
    field.set(9)
    assert field.to_bytes() == bytes([0x80, 0x40])
    assert list(field) == [0, 9]
    assert field.count() == 2


def test_set_and_clear_report_changes_and_keep_the_count() -> None:
    field = Bitfield(17)
    assert field.set(16) is True
    assert field.set(16) is False
    assert field.count() == 1
    assert 16 in field
    assert field[16]
    assert field.clear(16) is True
    assert field.clear(16) is False
    assert field.count() == 0 and not field.any()


def test_all_set_leaves_spare_bits_clear() -> None:
    field = Bitfield(11, all_set=True)
    assert field.all()
    assert field.to_bytes() == bytes([0xFF, 0xE0])
    assert list(field.missing()) == []


def test_missing_lists_unset_pieces_below_the_size() -> None:
    field = Bitfield.from_indices(11, [0, 1, 2, 3, 4, 5, 6, 7, 9])
    assert list(field.missing()) == [8, 10]


def test_from_bytes_rejects_a_wrong_length() -> None:
    with pytest.raises(BitfieldError):
        Bitfield.from_bytes(b"\x00\x00", 20)


def test_from_bytes_rejects_spare_bits_set() -> None:
    with pytest.raises(BitfieldError):
        Bitfield.from_bytes(bytes([0xFF, 0x01]), 12)


def test_from_bytes_counts_the_set_bits() -> None:
    field = Bitfield.from_bytes(bytes([0xF0, 0x80]), 9)
    assert field.count() == 5
    assert list(field) == [0, 1, 2, 3, 8]


def test_out_of_range_index_raises_index_error_and_is_not_contained() -> None:
    field = Bitfield(8)
    with pytest.raises(IndexError):
        field.set(8)
    assert 8 not in field
    assert -1 not in field


def test_set_algebra_and_subset() -> None:
    a = Bitfield.from_indices(12, [1, 2, 3])
    b = Bitfield.from_indices(12, [3, 4])
    assert list(a & b) == [3]
    assert list(a | b) == [1, 2, 3, 4]
    assert list(a - b) == [1, 2]
    assert (a & b).issubset(a)
    assert not a.issubset(b)
    with pytest.raises(ValueError):
        _ = a & Bitfield(13)


def test_copy_is_independent_and_equal() -> None:
    a = Bitfield.from_indices(5, [1])
    b = a.copy()
    assert a == b
    b.set(2)
    assert a != b and a.count() == 1


def test_zero_pieces() -> None:
    field = Bitfield(0)
    assert field.to_bytes() == b""
    assert field.all() and list(field) == []
    assert Bitfield.from_bytes(b"", 0) == field
