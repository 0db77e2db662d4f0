"""BEP 52 hash requests answered from piece layers: hashes plus uncles that prove
them against the file's pieces root, and rejects for what we do not serve."""

from __future__ import annotations

import hashlib
import os

import pytest

from servent.codec.merkle import root_from_piece_layer
from servent.proto.hash_serving import HashServer
from servent.proto.peerwire import HashRequest

PIECE = 64 * 1024  # piece layer sits 2 levels above the 16 KiB leaves
HEIGHT = 2


def layer_of(count: int) -> tuple[bytes, bytes]:
    hashes = [os.urandom(32) for _ in range(count)]
    return b"".join(hashes), root_from_piece_layer(hashes, PIECE)


def prove(hashes: bytes, index: int, length: int, proof_layers: int) -> bytes:
    """Rebuild the root the way a receiver does: subtree of the range, then uncles."""
    nodes = [hashes[i : i + 32] for i in range(0, len(hashes), 32)]
    base, uncles = nodes[:length], nodes[length:]
    while len(base) > 1:
        base = [hashlib.sha256(base[i] + base[i + 1]).digest() for i in range(0, len(base), 2)]
    node, level = base[0], length.bit_length() - 1
    for uncle in uncles:
        position = index >> level
        node = hashlib.sha256(uncle + node if position & 1 else node + uncle).digest()
        level += 1
    return node


@pytest.mark.parametrize(
    ("pieces", "index", "length"),
    [(2, 0, 2), (5, 0, 4), (5, 4, 4), (37, 32, 8), (37, 0, 64), (1000, 512, 512), (3, 2, 2)],
)
def test_answer_proves_the_requested_hashes_up_to_the_root(
    pieces: int, index: int, length: int
) -> None:
    layer, root = layer_of(pieces)
    server = HashServer({root: layer}, PIECE)
    assert server.piece_layer_height == HEIGHT
    answer = server.answer(HashRequest(root, HEIGHT, index, length, proof_layers=40))
    assert answer is not None
    real = min(length, pieces - index)  # the rest of the range is the layer's padding
    assert answer[: real * 32] == layer[index * 32 : (index + real) * 32]
    assert prove(answer, index, length, 40) == root


def test_fewer_proof_layers_give_fewer_uncles() -> None:
    layer, root = layer_of(64)  # 6 levels above the piece layer
    server = HashServer({root: layer}, PIECE)
    full = server.answer(HashRequest(root, HEIGHT, 8, 4, proof_layers=10))
    assert full is not None and len(full) == (4 + 4) * 32  # uncles at levels 2..5
    partial = server.answer(HashRequest(root, HEIGHT, 8, 4, proof_layers=3))
    assert partial is not None and len(partial) == (4 + 2) * 32  # levels 2, 3
    assert partial == full[: len(partial)]
    none = server.answer(HashRequest(root, HEIGHT, 8, 4, proof_layers=0))
    assert none is not None and len(none) == 4 * 32


@pytest.mark.parametrize(
    "request_",
    [
        HashRequest(b"\1" * 32, HEIGHT, 0, 2, 5),  # unknown file
        HashRequest(b"ROOT", 0, 0, 2, 5),  # leaf layer: not served
        HashRequest(b"ROOT", HEIGHT, 0, 3, 5),  # length not a power of two
        HashRequest(b"ROOT", HEIGHT, 2, 4, 5),  # index not a multiple of length
        HashRequest(b"ROOT", HEIGHT, 0, 1024, 5),  # too many hashes
        HashRequest(b"ROOT", HEIGHT, 8, 8, 5),  # beyond the padded layer (8 wide)
        HashRequest(b"ROOT", HEIGHT, 0, 1, 5),  # BEP 52: at least two
    ],
)
def test_requests_we_do_not_serve_are_rejected(request_: HashRequest) -> None:
    layer, root = layer_of(5)
    server = HashServer({root: layer}, PIECE)
    if request_.pieces_root == b"ROOT":
        request_ = HashRequest(
            root, request_.base_layer, request_.index, request_.length, request_.proof_layers
        )
    assert server.answer(request_) is None


def test_a_layer_that_does_not_hash_to_its_root_is_never_served() -> None:
    layer, root = layer_of(5)
    server = HashServer({root: layer[:-1] + b"\0"}, PIECE)
    assert server.answer(HashRequest(root, HEIGHT, 0, 2, 5)) is None
