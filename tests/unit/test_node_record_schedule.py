"""When the address record is put again (PublishSchedule): sans-IO, on a virtual clock."""

from __future__ import annotations

import random

import pytest

from servent.net.node_record import RETRY_JITTER, PublishSchedule
from servent.testing.clock import VirtualClock


def _schedule(clock: VirtualClock, seed: int = 7) -> PublishSchedule:
    return PublishSchedule(
        clock.now, republish_interval=1800.0, check_interval=60.0, first_retry=2.0,
        rng=random.Random(seed),
    )  # fmt: skip


def _delays_after_failures(
    clock: VirtualClock, schedule: PublishSchedule, count: int
) -> list[float]:
    delays = []
    for _ in range(count):
        schedule.failed(clock.now)
        delays.append(schedule.wait(clock.now))
        clock.advance(delays[-1])
        assert schedule.is_due(clock.now)
    return delays


def test_due_at_once_on_start() -> None:
    clock = VirtualClock(100.0)
    schedule = _schedule(clock)
    assert schedule.is_due(clock.now) and schedule.wait(clock.now) == 0.0


def test_a_put_that_stored_nowhere_is_retried_after_a_doubling_jittered_delay() -> None:
    clock = VirtualClock()
    schedule = _schedule(clock)
    delays = _delays_after_failures(clock, schedule, 8)
    nominal = [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    for delay, top in zip(delays, nominal, strict=True):
        assert top * (1 - RETRY_JITTER) <= delay <= top
    # Seven tries in the first ~3 minutes, where the fixed 60 s check made three.
    assert sum(delays[:6]) <= 122.0


def test_a_stored_put_waits_the_republish_interval_and_resets_the_back_off() -> None:
    clock = VirtualClock()
    schedule = _schedule(clock)
    _delays_after_failures(clock, schedule, 5)
    schedule.stored(clock.now)
    assert schedule.wait(clock.now) == 1800.0
    clock.advance(1799.0)
    assert not schedule.is_due(clock.now)
    clock.advance(1.0)
    assert schedule.is_due(clock.now)
    schedule.failed(clock.now)  # the republish stored nowhere: short again
    assert 2.0 * (1 - RETRY_JITTER) <= schedule.wait(clock.now) <= 2.0


def test_nodes_started_together_spread_their_retries() -> None:
    waits = set()
    for seed in range(20):
        clock = VirtualClock()
        schedule = _schedule(clock, seed)
        _delays_after_failures(clock, schedule, 3)
        schedule.failed(clock.now)
        waits.add(round(schedule.wait(clock.now), 3))
    assert len(waits) > 10


@pytest.mark.parametrize("check_interval", [0.2, 1.0])
def test_the_first_retry_never_exceeds_the_check_interval(check_interval: float) -> None:
    schedule = PublishSchedule(0.0, check_interval=check_interval, rng=random.Random(1))
    for _ in range(6):
        schedule.failed(0.0)
        assert 0.0 < schedule.wait(0.0) <= check_interval
