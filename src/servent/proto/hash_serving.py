"""Answers to BEP 52 ``hash request`` messages from a torrent's piece layers.

A peer that joined a v2 torrent by magnet has the info dictionary (through
``ut_metadata``) but not the ``piece layers``; it asks for them with hash
requests.  We serve requests whose base layer is the piece layer (BEP 52
requires clients to support the leaf and piece layers; leaf hashes would
mean hashing file data on demand, so those are rejected, which the BEP
allows).  Each file's tree above the piece layer is built once, on first
use, and kept: a request then costs a few list lookups.

Sans-IO and pure: in goes the request and the metainfo's layers, out come
the hashes (base-layer hashes, then one uncle per proof layer from the
lowest up, omitting the layers the requested hashes already cover).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from servent.codec.merkle import blocks_per_piece, next_power_of_two, zero_subtree
from servent.proto.peerwire import HashRequest

__all__ = ["MAX_HASHES_PER_REQUEST", "HashServer"]

HASH_SIZE = 32
#: Largest ``length`` answered (BEP 52: SHOULD NOT exceed 512).
MAX_HASHES_PER_REQUEST = 512


class HashServer:
    """Serves one torrent's piece-layer hashes with proofs."""

    def __init__(self, piece_layers: Mapping[bytes, bytes], piece_length: int) -> None:
        self._layers = piece_layers
        self._piece_length = piece_length
        self._height = blocks_per_piece(piece_length).bit_length() - 1 if piece_layers else 0
        #: pieces root -> tree levels from the (padded) piece layer up to the root.
        self._trees: dict[bytes, list[list[bytes]] | None] = {}
        self.answered = 0
        self.rejected = 0

    @property
    def piece_layer_height(self) -> int:
        """The ``base layer`` value that names the piece layer."""
        return self._height

    def answer(self, request: HashRequest) -> bytes | None:
        """The concatenated hashes for ``request``, or None to reject it."""
        hashes = self._answer(request)
        if hashes is None:
            self.rejected += 1
        else:
            self.answered += 1
        return hashes

    def _answer(self, request: HashRequest) -> bytes | None:
        if request.base_layer != self._height or not self._layers:
            return None
        tree = self._tree(request.pieces_root)
        if tree is None:
            return None
        width = len(tree[0])
        length, index = request.length, request.index
        if (
            length < 2
            or length > MAX_HASHES_PER_REQUEST
            or length & (length - 1)
            or index < 0
            or index % length
            or index + length > width
            or request.proof_layers < 0
        ):
            return None
        out = tree[0][index : index + length]
        # Proof layer j's uncle sits j levels above the base; the requested hashes
        # themselves cover the first log2(length) - 1 layers, which are omitted.
        covered = length.bit_length() - 1
        top = len(tree) - 1  # the root's level (it has no sibling)
        for level in range(covered, min(request.proof_layers, top - 1) + 1):
            out.append(tree[level][(index >> level) ^ 1])
        return b"".join(out)

    def _tree(self, root: bytes) -> list[list[bytes]] | None:
        if root in self._trees:
            return self._trees[root]
        tree = _build_tree(self._layers.get(root), self._height, root)
        self._trees[root] = tree
        return tree


def _build_tree(layer: bytes | None, height: int, root: bytes) -> list[list[bytes]] | None:
    """Levels from the padded piece layer up to ``root``; None if they do not hash to it."""
    if layer is None or not layer or len(layer) % HASH_SIZE:
        return None
    level = [layer[i : i + HASH_SIZE] for i in range(0, len(layer), HASH_SIZE)]
    level += [zero_subtree(height)] * (next_power_of_two(len(level)) - len(level))
    levels = [level]
    sha256 = hashlib.sha256
    while len(level) > 1:
        level = [sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
        levels.append(level)
    return levels if level[0] == root else None
