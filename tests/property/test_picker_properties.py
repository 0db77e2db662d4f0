"""Hypothesis: the picker never hands out what it must not, and a swarm always finishes."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.codec.bitfield import Bitfield
from servent.proto.peerwire.messages import Request
from servent.proto.picker import PiecePicker

BLOCK = 16384


@st.composite
def swarms(draw: st.DrawFn) -> tuple[int, int, list[set[int]], list[int], int]:
    num_pieces = draw(st.integers(1, 24))
    blocks = draw(st.integers(1, 4))
    peers = draw(st.lists(st.sets(st.integers(0, num_pieces - 1)), min_size=1, max_size=5))
    priorities = draw(st.lists(st.integers(0, 7), min_size=num_pieces, max_size=num_pieces))
    return num_pieces, blocks, peers, priorities, draw(st.integers(0, 2**32))


def _run_swarm(
    num_pieces: int,
    blocks: int,
    peers: list[set[int]],
    priorities: list[int],
    seed: int,
    sequential: bool,
) -> list[Request]:
    """Download with random delivery order and failures; return the picks in order."""
    length = num_pieces * blocks * BLOCK - 100
    picker = PiecePicker(
        num_pieces,
        blocks * BLOCK,
        length,
        rng=random.Random(seed),
        priorities=priorities,
        sequential=sequential,
    )
    for number, have in enumerate(peers):
        picker.add_peer(number, Bitfield.from_indices(num_pieces, have))
    chaos = random.Random(seed)
    outstanding: list[tuple[int, Request]] = []
    history: list[Request] = []
    for _ in range(2000):
        for number, have in enumerate(peers):
            for request in picker.pick(number, chaos.randint(1, 4)):
                assert request.index in have
                assert priorities[request.index] > 0
                assert request.index not in picker.have
                history.append(request)
                outstanding.append((number, request))
        if not outstanding:
            break
        number, request = outstanding.pop(chaos.randrange(len(outstanding)))
        if chaos.random() < 0.1:
            picker.on_request_failed(number, request)
            continue
        outcome = picker.on_block_received(number, request)
        if outcome.piece_complete:
            if chaos.random() < 0.1:
                assert number in picker.on_piece_failed(request.index)
            else:
                picker.on_piece_verified(request.index)
        for loser, cancelled in outcome.cancels:
            if (loser, cancelled) in outstanding:
                outstanding.remove((loser, cancelled))
                picker.on_request_failed(loser, cancelled)
    reachable = set().union(*peers)
    wanted = {i for i in range(num_pieces) if priorities[i] > 0}
    assert wanted & reachable <= set(picker.have)
    assert set(picker.have) <= wanted
    if wanted <= reachable:
        assert picker.is_complete()
    return history


@settings(max_examples=150, deadline=None)
@given(swarms(), st.booleans())
def test_swarm_download_completes_and_respects_haves_and_priorities(
    swarm: tuple[int, int, list[set[int]], list[int], int], sequential: bool
) -> None:
    _run_swarm(*swarm, sequential)


@settings(max_examples=50, deadline=None)
@given(swarms())
def test_same_seed_gives_same_picks(swarm: tuple[int, int, list[set[int]], list[int], int]) -> None:
    assert _run_swarm(*swarm, False) == _run_swarm(*swarm, False)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(1, 4), st.integers(1, 6), st.integers(0, 1000))
def test_no_block_is_given_to_two_peers_before_endgame(
    num_pieces: int, blocks: int, peer_count: int, seed: int
) -> None:
    picker = PiecePicker(
        num_pieces, blocks * BLOCK, num_pieces * blocks * BLOCK, rng=random.Random(seed)
    )
    for number in range(peer_count):
        picker.add_peer(number, None)
    handed: set[Request] = set()
    rng = random.Random(seed)
    while not picker.in_endgame:
        for request in picker.pick(rng.randrange(peer_count), rng.randint(1, 5)):
            # A duplicate is legal only once every block has been handed out.
            assert request not in handed or len(handed) == num_pieces * blocks
            handed.add(request)
    assert len(handed) == num_pieces * blocks
