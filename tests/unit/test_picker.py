"""PiecePicker: rarest first, partial first, endgame, sequential, priorities, provenance."""

from __future__ import annotations

import random

from servent.codec.bitfield import Bitfield
from servent.proto.peerwire.messages import Request
from servent.proto.picker import PiecePicker, priorities_from_files

BLOCK = 16384


def make_picker(
    num_pieces: int = 8, blocks_per_piece: int = 2, seed: int = 1, **kwargs: object
) -> PiecePicker:
    piece_length = blocks_per_piece * BLOCK
    return PiecePicker(
        num_pieces,
        piece_length,
        num_pieces * piece_length,
        rng=random.Random(seed),
        **kwargs,  # type: ignore[arg-type]
    )


def field(num_pieces: int, *indices: int) -> Bitfield:
    return Bitfield.from_indices(num_pieces, indices)


def test_rarest_piece_is_picked_first() -> None:
    picker = make_picker()
    picker.add_peer("a", field(8, 0, 1, 2, 3))
    picker.add_peer("b", field(8, 0, 1, 2))
    picker.add_peer("c", field(8, 1, 2))
    # piece 3 has availability 1, piece 0 has 2, pieces 1 and 2 have 3
    requests = picker.pick("a", 2)
    assert {r.index for r in requests} == {3}
    assert [r.begin for r in requests] == [0, BLOCK]
    assert picker.pick("a", 2)[0].index == 0


def test_ties_are_broken_randomly_but_deterministically_per_seed() -> None:
    def first_piece(seed: int) -> int:
        picker = make_picker(num_pieces=64, seed=seed)
        picker.add_peer("seed", None)
        return picker.pick("seed", 1)[0].index

    assert first_piece(5) == first_piece(5)
    assert len({first_piece(seed) for seed in range(20)}) > 5


def test_partial_pieces_are_finished_first() -> None:
    picker = make_picker(blocks_per_piece=4)
    picker.add_peer("a", None)
    picker.add_peer("b", None)
    first = picker.pick("a", 1)
    assert first == [Request(first[0].index, 0, BLOCK)]
    second = picker.pick("b", 3)
    assert {r.index for r in second} == {first[0].index}
    assert [r.begin for r in second] == [BLOCK, 2 * BLOCK, 3 * BLOCK]


def test_last_piece_is_short() -> None:
    picker = PiecePicker(3, 2 * BLOCK, 2 * 2 * BLOCK + 100, rng=random.Random(1))
    picker.add_peer("a", field(3, 2))
    assert picker.pick("a", 5) == [Request(2, 0, 100)]


def test_only_pieces_the_peer_has_and_allowed_fast_restriction() -> None:
    picker = make_picker()
    picker.add_peer("a", field(8, 5, 6))
    assert {r.index for r in picker.pick("a", 10)} == {5, 6}
    picker.add_peer("b", None)
    assert {r.index for r in picker.pick("b", 4, allowed={2, 3})} <= {2, 3}


def test_received_blocks_complete_a_piece_and_verification_records_it() -> None:
    picker = make_picker()
    picker.add_peer("a", None)
    requests = picker.pick("a", 2)
    index = requests[0].index
    assert picker.on_block_received("a", requests[0]).piece_complete is False
    outcome = picker.on_block_received("a", requests[1])
    assert outcome.accepted and outcome.piece_complete and outcome.cancels == ()
    picker.on_piece_verified(index)
    assert index in picker.have
    assert all(r.index != index for r in picker.pick("a", 100))


def test_failed_piece_names_its_sources_and_is_fetched_again() -> None:
    picker = make_picker(num_pieces=1)
    picker.add_peer("liar", None)
    picker.add_peer("honest", None)
    first = picker.pick("liar", 1)
    second = picker.pick("honest", 1)
    picker.on_block_received("liar", first[0])
    assert picker.on_block_received("honest", second[0]).piece_complete
    assert picker.block_sources(0) == {0: "liar", BLOCK: "honest"}
    assert picker.on_piece_failed(0) == {"liar", "honest"}
    picker.remove_peer("liar")
    assert picker.pick("honest", 2) == [Request(0, 0, BLOCK), Request(0, BLOCK, BLOCK)]


def test_endgame_requests_the_same_block_twice_and_cancels_the_loser() -> None:
    picker = make_picker(num_pieces=1, blocks_per_piece=2)
    picker.add_peer("slow", None)
    picker.add_peer("fast", None)
    assert len(picker.pick("slow", 2)) == 2
    assert picker.in_endgame
    duplicates = picker.pick("fast", 2)
    assert duplicates == [Request(0, 0, BLOCK), Request(0, BLOCK, BLOCK)]
    outcome = picker.on_block_received("fast", duplicates[0])
    assert outcome.cancels == (("slow", Request(0, 0, BLOCK)),)
    late = picker.on_block_received("slow", Request(0, 0, BLOCK))
    assert not late.accepted


def test_rejected_request_frees_the_block_for_others() -> None:
    picker = make_picker(num_pieces=1, blocks_per_piece=1)
    picker.add_peer("a", None)
    picker.add_peer("b", None)
    (request,) = picker.pick("a", 1)
    picker.on_request_failed("a", request)
    assert not picker.in_endgame
    assert picker.pick("b", 1) == [request]
    assert picker.requests_of("b") == [request]
    assert picker.requests_of("a") == []


def test_departed_peer_releases_its_blocks_and_availability() -> None:
    picker = make_picker()
    picker.add_peer("a", field(8, 1))
    picker.add_peer("b", field(8, 1, 2))
    assert picker.availability(1) == 2
    picker.pick("a", 2)
    picker.remove_peer("a")
    assert picker.availability(1) == 1
    assert [r.index for r in picker.pick("b", 2)] == [1, 1]


def test_have_messages_update_availability_and_make_a_seed() -> None:
    picker = make_picker(num_pieces=2)
    picker.add_peer("a", field(2))
    assert not picker.peer_is_interesting("a")
    picker.peer_has("a", 0)
    assert picker.availability(0) == 1 and picker.availability(1) == 0
    assert picker.peer_is_interesting("a")
    picker.peer_has("a", 1)
    assert picker.availability(0) == 1 and picker.availability(1) == 1


def test_sequential_mode_picks_in_index_order() -> None:
    picker = make_picker(num_pieces=6, sequential=True)
    picker.add_peer("a", None)
    indices = [r.index for r in picker.pick("a", 12)]
    assert indices == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_priority_zero_is_never_picked_and_high_priority_goes_first() -> None:
    picker = make_picker(num_pieces=4, priorities=[0, 1, 7, 0])
    picker.add_peer("a", None)
    assert [r.index for r in picker.pick("a", 10)] == [2, 2, 1, 1]
    assert picker.wanted_remaining() == 2
    picker.set_priorities([1, 1, 1, 1])
    assert {r.index for r in picker.pick("a", 10)} == {0, 3}


def test_complete_when_every_wanted_piece_is_verified() -> None:
    picker = make_picker(num_pieces=2, priorities=[1, 0])
    picker.add_peer("a", None)
    for request in picker.pick("a", 10):
        picker.on_block_received("a", request)
    assert not picker.is_complete()
    picker.on_piece_verified(0)
    assert picker.is_complete()


def test_priorities_from_files_covers_shared_boundary_pieces() -> None:
    # files: [0, 100) skipped, [100, 250) wanted, [250, 400) skipped; piece length 100
    result = priorities_from_files([(0, 100, 0), (100, 150, 4), (250, 150, 0)], 4, 100)
    assert result == [0, 4, 4, 0]


def test_endgame_starts_even_if_some_piece_is_missing_from_the_swarm() -> None:
    picker = make_picker(num_pieces=2, blocks_per_piece=1)
    picker.add_peer("slow", field(2, 0))
    picker.add_peer("fast", field(2, 0))
    assert picker.pick("slow", 5) == [Request(0, 0, BLOCK)]
    assert picker.in_endgame  # piece 1 is nowhere; piece 0 is all requested
    assert picker.pick("fast", 5) == [Request(0, 0, BLOCK)]


def test_v2_layout_with_short_last_piece_of_each_file() -> None:
    # Two files aligned to pieces (BEP 52): 1.5 pieces and 1 piece of 32 KiB.
    sizes = [2 * BLOCK, BLOCK, 2 * BLOCK]
    picker = PiecePicker(3, 2 * BLOCK, rng=random.Random(1), piece_size=sizes.__getitem__)
    picker.add_peer("a", None)
    requests = picker.pick("a", 10)
    assert sorted(requests, key=lambda r: (r.index, r.begin)) == [
        Request(0, 0, BLOCK),
        Request(0, BLOCK, BLOCK),
        Request(1, 0, BLOCK),
        Request(2, 0, BLOCK),
        Request(2, BLOCK, BLOCK),
    ]


# ------------------------------------------------------------- deadlines


def test_deadline_pieces_come_first_in_deadline_order() -> None:
    picker = make_picker(num_pieces=16, blocks_per_piece=1)
    picker.add_peer("a", None)
    picker.set_deadline(9, 5.0)
    picker.set_deadline(3, 2.0)
    picker.set_deadline(12, 3.0)
    assert [r.index for r in picker.pick("a", 3)] == [3, 12, 9]


def test_deadline_pieces_beat_rarest_first_and_rest_stays_rarest() -> None:
    picker = make_picker(num_pieces=8, blocks_per_piece=1)
    picker.add_peer("a", None)
    picker.add_peer("b", field(8, 0, 1, 2, 3, 4, 5, 6))  # piece 7 is the rarest
    picker.set_deadline(2, 1.0)
    assert [r.index for r in picker.pick("a", 2)] == [2, 7]


def test_deadline_piece_the_peer_lacks_is_skipped_for_that_peer() -> None:
    picker = make_picker(num_pieces=8, blocks_per_piece=1)
    picker.add_peer("a", field(8, 1, 2))
    picker.set_deadline(5, 1.0)
    picker.set_deadline(1, 2.0)
    assert picker.pick("a", 1)[0].index == 1


def test_cleared_deadlines_fall_back_to_rarest_first() -> None:
    picker = make_picker(num_pieces=8, blocks_per_piece=1)
    picker.add_peer("a", None)
    picker.add_peer("b", field(8, 0, 1, 2, 3, 4, 5, 6))
    picker.set_deadline(2, 1.0)
    picker.clear_deadlines()
    assert picker.deadlines() == {}
    assert picker.pick("a", 1)[0].index == 7


def test_verified_piece_drops_its_deadline_and_have_pieces_take_none() -> None:
    picker = make_picker(num_pieces=8, blocks_per_piece=1)
    picker.set_deadline(4, 1.0)
    picker.on_piece_verified(4)
    picker.set_deadline(4, 2.0)
    assert picker.deadlines() == {}


def test_urgent_deadline_piece_is_requested_from_a_second_peer() -> None:
    picker = make_picker(num_pieces=8, blocks_per_piece=1)
    picker.add_peer("slow", None)
    picker.add_peer("fast", None)
    picker.set_deadline(6, 10.0)
    assert picker.pick("slow", 1)[0].index == 6
    # Far from its deadline: the other peer gets other work.
    assert picker.pick_blocks("fast", 1, now=0.0)[0][0] != 6
    # Near the deadline: a duplicate request for the same block is allowed.
    assert (6, 0, BLOCK) in picker.pick_blocks("fast", 2, now=9.5)


def test_read_window_deadlines_follow_the_read_position() -> None:
    from servent.proto.stream_plan import FileSpan, read_deadlines

    span = FileSpan(offset=100, length=10 * BLOCK, piece_length=BLOCK, num_pieces=12)
    deadlines = read_deadlines(span, start=BLOCK, length=10, now=50.0, window=3 * BLOCK)
    assert deadlines[1] == 50.0  # file byte BLOCK sits in piece 1 (offset 100)
    window = [index for index in sorted(deadlines) if index > 1]
    assert window == [2, 3, 4]
    assert [deadlines[i] for i in window] == sorted(deadlines[i] for i in window)
    assert all(deadlines[i] > 50.0 for i in window)
    assert span.ends(BLOCK) == [0, 1, 9, 10]
    assert read_deadlines(span, start=10 * BLOCK, length=1, now=0.0) == {}


def test_an_urgent_unstarted_deadline_displaces_background_requests() -> None:
    picker = make_picker(num_pieces=8, blocks_per_piece=1)
    picker.add_peer("a", None)
    background = picker.pick("a", 3)
    assert picker.displaced_requests("a", now=0.0) == []  # no deadline: nothing to cancel
    picker.set_deadline(background[0].index, 0.0)  # already requested: no need
    assert picker.displaced_requests("a", now=0.0) == []
    seek = next(i for i in range(8) if i not in {r.index for r in background})
    picker.set_deadline(seek, 50.0)  # far away: not urgent yet
    assert picker.displaced_requests("a", now=0.0) == []
    displaced = picker.displaced_requests("a", now=49.5)
    assert set(displaced) == set(background[1:])
    for request in displaced:
        picker.on_request_failed("a", request)
    assert picker.pick("a", 1)[0].index == seek


def test_readers_deadlines_merge_to_the_earliest_per_piece() -> None:
    from servent.proto.stream_plan import merge_deadlines

    assert merge_deadlines([{1: 5.0, 2: 1.0}, {1: 3.0, 7: 9.0}, {}]) == {1: 3.0, 2: 1.0, 7: 9.0}
    assert merge_deadlines([]) == {}
