"""BEP 12 tier order, promotion, fallback and announce timing."""

from __future__ import annotations

import random

from servent.proto.tracker_tiers import MIN_INTERVAL, TrackerTiers


def test_fallback_within_a_tier_then_to_the_next_tier_then_back_off() -> None:
    tiers = TrackerTiers([["a", "b"], ["c"]], rng=random.Random(3))
    first = tiers.current()
    assert first in ("a", "b")
    tiers.failed(first, 0)
    second = tiers.current()
    assert second in ("a", "b") and second != first and tiers.due(0)
    tiers.failed(second, 0)
    assert tiers.current() == "c"
    tiers.failed("c", 0, base_backoff=10)
    assert tiers.current() == first
    assert not tiers.due(5) and tiers.due(10)
    tiers.failed(first, 10, base_backoff=10)
    tiers.failed(second, 10, base_backoff=10)
    tiers.failed("c", 10, base_backoff=10)
    assert tiers.next_timer() == 30  # doubled


def test_a_tracker_that_answers_is_promoted_to_the_front_of_its_tier() -> None:
    tiers = TrackerTiers([["a", "b", "c"]], rng=random.Random(0))
    order = tiers.tiers[0]
    tiers.failed(order[0], 0)
    tiers.succeeded(order[1], 0, interval=1800)
    assert tiers.tiers[0][0] == order[1] and tiers.current() == order[1]


def test_interval_and_min_interval_are_honoured_with_a_floor() -> None:
    tiers = TrackerTiers([["a"]], rng=random.Random(0))
    tiers.succeeded("a", 100, interval=1800)
    assert tiers.next_timer() == 1900 and not tiers.due(1899)
    tiers.succeeded("a", 0, interval=1, min_interval=None)
    assert tiers.next_timer() == MIN_INTERVAL
    tiers.succeeded("a", 0, interval=100, min_interval=600)
    assert tiers.next_timer() == 600


def test_no_trackers_means_nothing_to_do() -> None:
    tiers = TrackerTiers([[], [""]], rng=random.Random(0))
    assert tiers.current() is None and tiers.next_timer() is None and not tiers.due(1e9)


def test_the_floor_is_configurable_for_tests_on_loopback() -> None:
    tiers = TrackerTiers([["a"]], rng=random.Random(0), min_interval=1.0)
    tiers.succeeded("a", 10, interval=0)
    assert tiers.next_timer() == 11
    tiers.succeeded("a", 10, interval=5, min_interval=8)
    assert tiers.next_timer() == 18
