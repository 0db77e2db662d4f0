"""BEP 52 merkle trees: virtual zero padding equals explicit padding."""

from __future__ import annotations

import hashlib

import pytest

from servent.codec.merkle import (
    BLOCK_SIZE,
    ZERO_HASH,
    block_hashes,
    file_root,
    file_root_from_blocks,
    merkle_root,
    piece_hash_v2,
    piece_layer,
    root_from_piece_layer,
)


def h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def explicit_root(leaves: list[bytes], count: int) -> bytes:
    level = leaves + [ZERO_HASH] * (count - len(leaves))
    while len(level) > 1:
        level = [h(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def test_block_hashes_split_at_16_kib_with_short_last_block() -> None:
    data = bytes(range(256)) * 129  # 33024 bytes: two full blocks and 256 bytes
    assert block_hashes(data) == [h(data[:BLOCK_SIZE]), h(data[BLOCK_SIZE:2 * BLOCK_SIZE]),
                                  h(data[2 * BLOCK_SIZE:])]
    assert block_hashes(b"") == []


@pytest.mark.parametrize(("leaves", "count"), [(1, 1), (1, 4), (3, 4), (5, 8), (0, 8), (7, 64)])
def test_virtual_padding_equals_explicit_zero_leaves(leaves: int, count: int) -> None:
    items = [h(bytes([i])) for i in range(leaves)]
    assert merkle_root(items, count) == explicit_root(items, count)


def test_leaf_count_must_be_a_power_of_two_that_fits() -> None:
    with pytest.raises(ValueError):
        merkle_root([ZERO_HASH], 3)
    with pytest.raises(ValueError):
        merkle_root([ZERO_HASH] * 3, 2)


@pytest.mark.parametrize(
    "size", [1, BLOCK_SIZE, 5 * BLOCK_SIZE + 7, 16 * BLOCK_SIZE, 17 * BLOCK_SIZE]
)
def test_piece_layer_reproduces_the_file_root(size: int) -> None:
    data = (b"servent" * (size // 7 + 1))[:size]
    piece_length = 4 * BLOCK_SIZE
    leaves = block_hashes(data)
    layer = piece_layer(leaves, piece_length)
    assert len(layer) == -(-size // piece_length)
    if size > piece_length:
        assert root_from_piece_layer(layer, piece_length) == file_root(data)
    # Each layer entry is the hash of its piece, the last one padded with zero leaves.
    for index, expected in enumerate(layer):
        piece = data[index * piece_length:(index + 1) * piece_length]
        assert piece_hash_v2(piece, piece_length) == expected


def test_small_file_root_pads_to_its_own_block_count_not_to_the_piece() -> None:
    data = b"x" * (3 * BLOCK_SIZE)
    leaves = block_hashes(data)
    assert file_root(data) == explicit_root(leaves, 4)
    assert file_root(data) != piece_hash_v2(data, 16 * BLOCK_SIZE)
    assert file_root_from_blocks([]) == ZERO_HASH


def test_piece_length_must_be_a_power_of_two_of_at_least_one_block() -> None:
    with pytest.raises(ValueError):
        piece_hash_v2(b"a", 3 * BLOCK_SIZE)
    with pytest.raises(ValueError):
        piece_hash_v2(b"a", BLOCK_SIZE // 2)
