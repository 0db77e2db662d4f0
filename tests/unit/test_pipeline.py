"""RequestPipeline: queue depth follows the peer's rate x latency."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.proto.pipeline import PipelineConfig, RequestPipeline, top_up

BLOCK = 16384


def feed(pipeline: RequestPipeline, rate: float, latency: float, seconds: float) -> float:
    """Deliver blocks at ``rate`` bytes/s, each requested ``latency`` seconds before."""
    interval = BLOCK / rate
    now = 0.0
    while now < seconds:
        now += interval
        pipeline.on_block(BLOCK, now, requested_at=now - latency)
    return now


def test_depth_before_measurement_is_the_initial_depth() -> None:
    assert RequestPipeline(0.0).depth(0.0) == PipelineConfig().initial_depth


def test_fast_far_peer_gets_a_deep_queue_and_slow_near_peer_a_short_one() -> None:
    fast = RequestPipeline(0.0)
    end = feed(fast, rate=50e6, latency=0.1, seconds=3.0)
    slow = RequestPipeline(0.0)
    end_slow = feed(slow, rate=50e3, latency=0.01, seconds=3.0)
    assert fast.depth(end) > 500 // 2
    assert slow.depth(end_slow) == 2 + 1  # one block covers 0.25 s at 50 kB/s


def test_depth_is_bounded() -> None:
    pipeline = RequestPipeline(0.0, PipelineConfig(max_depth=64))
    end = feed(pipeline, rate=1e9, latency=1.0, seconds=1.0)
    assert pipeline.depth(end) == 64


def test_queueing_delay_does_not_inflate_latency() -> None:
    pipeline = RequestPipeline(0.0)
    pipeline.on_block(BLOCK, 1.0, requested_at=0.98)
    pipeline.on_block(BLOCK, 2.0, requested_at=0.0)  # sat in the peer's queue
    assert pipeline.latency is not None and abs(pipeline.latency - 0.02) < 1e-9


def test_quiet_peer_rate_decays() -> None:
    pipeline = RequestPipeline(0.0)
    end = feed(pipeline, rate=10e6, latency=0.05, seconds=2.0)
    busy = pipeline.depth(end)
    assert pipeline.depth(end + 30.0) < busy


def test_top_up_waits_for_a_quarter_of_the_depth_to_be_missing() -> None:
    assert top_up(100, 0) == 100  # an empty queue is always refilled
    assert top_up(100, 80) == 0  # 20 missing: wait, one write for many requests later
    assert top_up(100, 75) == 25
    assert top_up(100, 120) == 0  # depth shrank below what is outstanding
    assert top_up(3, 2) == 1  # shallow queues are topped up block by block


def test_latency_is_the_smallest_delay_of_this_and_the_previous_memory_window() -> None:
    import random

    rng = random.Random(7)
    config = PipelineConfig(latency_memory=1.0)
    pipeline = RequestPipeline(0.0, config)
    now, epoch = 0.0, 0.0
    window: list[float] = []
    previous: list[float] = []
    for _ in range(2000):
        now += rng.random() * 0.01
        requested_at = now - rng.random() * 0.2
        if now - epoch >= config.latency_memory:
            previous, window, epoch = window, [], now
        window.append(now - requested_at)
        pipeline.on_block(16384, now, requested_at)
        assert pipeline.latency == min(window + previous)


def test_fast_peer_gets_a_deep_queue_before_the_first_rate_window_closes() -> None:
    pipeline = RequestPipeline(0.0)
    end = feed(pipeline, rate=200e6, latency=0.001, seconds=0.06)
    assert pipeline.rate == 0.0  # no whole window yet
    assert pipeline.depth(end) > 1000 // 2
    early = RequestPipeline(0.0)
    early.on_block(BLOCK, 0.01, requested_at=0.009)
    assert early.depth(0.01) == PipelineConfig().initial_depth  # too little to judge


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(0.0, 1.5),  # time since the previous step
            st.integers(1, 64),  # blocks arriving (0: none, only a question)
            st.floats(0.0, 2.0),  # their request-to-block delay
            st.booleans(),  # whether depth() is asked after them
        ),
        max_size=60,
    )
)
def test_depth_remembered_between_questions_is_the_depth_worked_out_afresh(
    steps: list[tuple[float, int, float, bool]],
) -> None:
    remembering = RequestPipeline(0.0)
    afresh = RequestPipeline(0.0)
    now = 0.0
    for gap, blocks, delay, ask in steps:
        now += gap
        for pipeline in (remembering, afresh):
            pipeline.on_block(blocks * BLOCK, now, requested_at=now - delay)
        if ask:
            afresh._depth_until = -math.inf  # forget: the depth is worked out again
            assert remembering.depth(now) == afresh.depth(now)
