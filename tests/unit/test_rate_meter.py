"""The sliding-window rate users see: current while bytes move, zero soon after they stop.

Regression: rates were a timer-sampled average, 0 in ``servent list`` right
after a burst began and still showing megabytes per second for seconds after
the transfer ended.
"""

from __future__ import annotations

import pytest

from servent.proto.rate_meter import RateMeter


def test_a_steady_transfer_reads_its_rate_at_any_moment() -> None:
    meter = RateMeter(window=2.0, slot=0.25)
    now = 100.0
    for _ in range(400):  # 16 KiB every 10 ms: 1.6384 MB/s for 4 s
        meter.add(16384, now)
        now += 0.01
    assert meter.rate(now) == pytest.approx(1_638_400, rel=0.15)
    assert meter.total == 400 * 16384


def test_the_first_burst_is_not_read_as_zero() -> None:
    meter = RateMeter()
    assert meter.rate(0.0) == 0.0  # read before anything moved
    meter.add(10_000_000, 5.0)  # a fast loopback transfer, read before any timer ran
    assert meter.rate(5.2) == pytest.approx(10_000_000, rel=0.01)


def test_the_rate_falls_to_zero_one_window_after_the_last_byte() -> None:
    meter = RateMeter(window=2.0, slot=0.25)
    now = 0.0
    for _ in range(300):
        meter.add(10_000, now)
        now += 0.01
    assert meter.rate(now) > 0
    assert meter.rate(now + 1.0) > 0  # still inside the window
    assert meter.rate(now + 2.3) == 0.0
    meter.add(1000, now + 100.0)  # long idle, then bytes again: old slots are gone
    assert meter.rate(now + 100.5) == pytest.approx(1000 / 2.0, rel=0.2)


def test_bad_shapes_are_refused() -> None:
    for window, slot in ((1.0, 0.0), (0.1, 0.25)):
        with pytest.raises(ValueError):
            RateMeter(window=window, slot=slot)
