"""Hypothesis: PartialPiece.take_free (runs of free blocks at once) equals one block at a time."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from servent.proto.peerwire.requests import BlockKey
from servent.proto.piece_blocks import FREE, RECEIVED, REQUESTED, PartialPiece

BLOCK = 16384
PER_PIECE = 70  # blocks per piece of the picker the keys belong to (>= any piece drawn)


def _one_at_a_time(
    piece: PartialPiece, peer: str, wanted: int, mine: set[int], out: list[BlockKey]
) -> None:
    """The plain definition: the first free blocks, in order, each marked requested."""
    for block, state in enumerate(piece.state):
        if wanted <= 0:
            return
        if state != FREE:
            continue
        piece.state[block] = REQUESTED
        piece.free -= 1
        piece.requesters[block] = peer
        mine.add(piece.index * PER_PIECE + block)
        begin = block * piece.block_size
        out.append((piece.index, begin, min(piece.block_size, piece.size - begin)))
        wanted -= 1


@st.composite
def pieces(draw: st.DrawFn) -> tuple[int, list[int], int]:
    blocks = draw(st.integers(1, 70))
    size = (blocks - 1) * BLOCK + draw(st.integers(1, BLOCK))  # the last block may be short
    states = draw(st.lists(st.sampled_from([FREE, REQUESTED, RECEIVED]), min_size=blocks,
                           max_size=blocks))  # fmt: skip
    return size, states, draw(st.integers(0, 80))


def _piece(size: int, states: list[int]) -> PartialPiece:
    piece = PartialPiece.start(7, size, BLOCK, 7 * PER_PIECE)
    piece.state[:] = bytes(states)
    piece.free = states.count(FREE)
    piece.requesters = {b: "other" for b, s in enumerate(states) if s == REQUESTED}
    return piece


@given(pieces())
def test_take_free_equals_one_block_at_a_time(case: tuple[int, list[int], int]) -> None:
    size, states, wanted = case
    fast, plain = _piece(size, states), _piece(size, states)
    fast_mine = {3 * PER_PIECE + 1}
    plain_mine = {3 * PER_PIECE + 1}
    fast_out: list[BlockKey] = [(1, 0, BLOCK)]
    plain_out: list[BlockKey] = [(1, 0, BLOCK)]
    fast.take_free("me", wanted, fast_mine, fast_out)
    _one_at_a_time(plain, "me", wanted, plain_mine, plain_out)
    assert fast_out == plain_out
    assert fast_mine == plain_mine
    assert fast.state == plain.state
    assert fast.free == plain.free
    assert fast.requesters == plain.requesters
