"""SHA-256 merkle trees of 16 KiB blocks (BEP 52).

Each file of a v2 torrent has its own tree: the leaves are the SHA-256 of
every 16 KiB block (the last one may be short), padded with all-zero leaves up
to a power of two.  Padding is virtual here: the hash of an all-zero subtree
of each height is precomputed once, so a small file in a big-piece torrent
costs no extra hashing.

The *piece layer* is the tree level whose nodes each cover one piece
(``piece_length / BLOCK_SIZE`` leaves).  A file's ``pieces root`` is the tree
root; files no longer than one piece have no piece layer entry and their
root is computed over their own blocks only (padded to a power of two of the
file's block count, not of the piece's).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

BLOCK_SIZE = 16384
"""Leaf size of every v2 merkle tree."""

HASH_SIZE = 32
ZERO_HASH = bytes(HASH_SIZE)
"""A padding leaf: 32 zero bytes (not the hash of anything)."""

_MAX_HEIGHT = 64
_ZERO_SUBTREES: list[bytes] = [ZERO_HASH]
for _ in range(_MAX_HEIGHT):
    _ZERO_SUBTREES.append(hashlib.sha256(_ZERO_SUBTREES[-1] * 2).digest())


def zero_subtree(height: int) -> bytes:
    """Root of a subtree of ``2**height`` zero leaves."""
    return _ZERO_SUBTREES[height]


def next_power_of_two(n: int) -> int:
    """Smallest power of two >= ``n`` (1 for ``n <= 1``)."""
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def block_hashes(data: bytes | bytearray | memoryview) -> list[bytes]:
    """SHA-256 of each 16 KiB block of ``data`` (the last one may be short)."""
    view = memoryview(data)
    sha256 = hashlib.sha256
    return [sha256(view[i : i + BLOCK_SIZE]).digest() for i in range(0, len(view), BLOCK_SIZE)]


def merkle_root(leaves: Sequence[bytes], leaf_count: int) -> bytes:
    """Root of a tree with ``leaves`` then zero leaves up to ``leaf_count``.

    ``leaf_count`` must be a power of two no smaller than ``len(leaves)``.
    The padding leaves are never materialised.
    """
    if leaf_count <= 0 or leaf_count & (leaf_count - 1):
        raise ValueError(f"leaf count {leaf_count} is not a power of two")
    if len(leaves) > leaf_count:
        raise ValueError(f"{len(leaves)} leaves do not fit in {leaf_count}")
    return _root_of_level(list(leaves), leaf_count, 0)


def _root_of_level(level: list[bytes], count: int, height: int) -> bytes:
    """Reduce ``level`` (nodes of ``height``, padded virtually to ``count``) to a root."""
    sha256 = hashlib.sha256
    while count > 1:
        if not level:
            return zero_subtree(height + count.bit_length() - 1)
        if len(level) % 2:
            level.append(_ZERO_SUBTREES[height])
        level = [sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
        count //= 2
        height += 1
    return level[0] if level else zero_subtree(height)


def blocks_per_piece(piece_length: int) -> int:
    """Leaves under one piece; ``piece_length`` must be a power of two >= 16 KiB."""
    if piece_length < BLOCK_SIZE or piece_length & (piece_length - 1):
        raise ValueError(f"v2 piece length {piece_length} is not a power of two >= 16 KiB")
    return piece_length // BLOCK_SIZE


def piece_hash_v2(piece_data: bytes | bytearray | memoryview, piece_length: int) -> bytes:
    """Piece-layer hash of one piece of a file longer than one piece.

    The subtree always has ``piece_length / 16 KiB`` leaves; a short last
    piece is padded with zero leaves.  For a file of at most one piece the
    expected hash is its ``pieces root``, i.e. :func:`file_root` of the data.
    """
    per_piece = blocks_per_piece(piece_length)
    if len(piece_data) > piece_length:
        raise ValueError("piece data longer than the piece length")
    return merkle_root(block_hashes(piece_data), per_piece)


def file_root_from_blocks(leaves: Sequence[bytes]) -> bytes:
    """``pieces root`` of a file given all its block hashes (``ZERO_HASH`` if empty).

    The tree has the file's block count rounded up to a power of two leaves.
    """
    if not leaves:
        return ZERO_HASH
    return merkle_root(leaves, next_power_of_two(len(leaves)))


def file_root(data: bytes | bytearray | memoryview) -> bytes:
    """``pieces root`` of a whole file held in memory."""
    return file_root_from_blocks(block_hashes(data))


def piece_layer(leaves: Sequence[bytes], piece_length: int) -> list[bytes]:
    """Piece-layer hashes of a file from its block hashes (one per piece)."""
    per_piece = blocks_per_piece(piece_length)
    return [
        merkle_root(leaves[i : i + per_piece], per_piece) for i in range(0, len(leaves), per_piece)
    ]


def root_from_piece_layer(layer: Sequence[bytes], piece_length: int) -> bytes:
    """Recompute a file's ``pieces root`` from its piece layer.

    The layer's nodes sit ``log2(piece_length / 16 KiB)`` levels above the
    leaves; the padding beyond the last piece is made of all-zero subtrees of
    that height.  Used to check received ``piece layers`` against the root.
    """
    height = blocks_per_piece(piece_length).bit_length() - 1
    if not layer:
        return ZERO_HASH
    return _root_of_level(list(layer), next_power_of_two(len(layer)), height)


def file_root_from_piece_hashes(layer: Sequence[bytes], piece_length: int) -> bytes:
    """Alias of :func:`root_from_piece_layer` named after what callers hold."""
    return root_from_piece_layer(layer, piece_length)
