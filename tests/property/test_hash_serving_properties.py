"""BEP 52 hash serving: every valid request's answer proves itself against the
file root; any request at all is answered or rejected, never a crash."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.codec.merkle import root_from_piece_layer
from servent.proto.hash_serving import MAX_HASHES_PER_REQUEST, HashServer
from servent.proto.peerwire import HashRequest

PIECE = 32 * 1024
HEIGHT = 1


def server_for(pieces: int) -> tuple[HashServer, bytes]:
    hashes = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(pieces)]
    root = root_from_piece_layer(hashes, PIECE)
    return HashServer({root: b"".join(hashes)}, PIECE), root


def rebuild(answer: bytes, index: int, length: int) -> bytes:
    nodes = [answer[i : i + 32] for i in range(0, len(answer), 32)]
    level_nodes, uncles = nodes[:length], nodes[length:]
    while len(level_nodes) > 1:
        level_nodes = [
            hashlib.sha256(level_nodes[i] + level_nodes[i + 1]).digest()
            for i in range(0, len(level_nodes), 2)
        ]
    node, level = level_nodes[0], length.bit_length() - 1
    for uncle in uncles:
        node = hashlib.sha256(uncle + node if (index >> level) & 1 else node + uncle).digest()
        level += 1
    return node


@st.composite
def valid_requests(draw: st.DrawFn) -> tuple[int, int, int]:
    pieces = draw(st.integers(2, 3000))
    width = 1 << (pieces - 1).bit_length()
    length = 1 << draw(st.integers(1, min(width, MAX_HASHES_PER_REQUEST).bit_length() - 1))
    index = length * draw(st.integers(0, width // length - 1))
    return pieces, index, length


@settings(max_examples=150, deadline=None)
@given(valid_requests())
def test_full_proof_rebuilds_the_root(case: tuple[int, int, int]) -> None:
    pieces, index, length = case
    server, root = server_for(pieces)
    answer = server.answer(HashRequest(root, HEIGHT, index, length, proof_layers=64))
    assert answer is not None and len(answer) % 32 == 0
    assert rebuild(answer, index, length) == root


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 300),
    st.integers(-5, 40),
    st.integers(-(2**31), 2**31),
    st.integers(-(2**31), 2**31),
    st.integers(-(2**31), 2**31),
)
def test_any_request_is_answered_or_rejected(
    pieces: int, base: int, index: int, length: int, proof: int
) -> None:
    server, root = server_for(max(pieces, 2))
    answer = server.answer(HashRequest(root, base, index, length, proof))
    assert answer is None or (len(answer) % 32 == 0 and len(answer) <= 32 * (length + 64))
