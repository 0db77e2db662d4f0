"""Token buckets: rate, burst, debt, several limits at once."""

from __future__ import annotations

import math

import pytest

from servent.proto.ratelimit import TokenBucket, delay_for


def test_full_bucket_allows_a_burst_then_waits_at_the_rate() -> None:
    bucket = TokenBucket(100_000.0, now=0.0, burst=50_000.0)
    assert bucket.try_consume(50_000, 0.0)
    assert not bucket.try_consume(10_000, 0.0)
    assert bucket.delay(10_000, 0.0) == pytest.approx(0.1)
    assert bucket.try_consume(10_000, 0.1)


def test_large_write_waits_for_a_full_bucket_then_goes_into_debt() -> None:
    bucket = TokenBucket(1000.0, now=0.0, burst=16384.0)
    bucket.consume(16384, 0.0)
    assert bucket.delay(65536, 0.0) == pytest.approx(16.384)
    bucket.consume(65536, 16.384)
    assert bucket.available(16.384) == pytest.approx(16384 - 65536)
    assert bucket.delay(1, 16.384) == pytest.approx((65536 - 16384 + 1) / 1000)


def test_long_run_rate_matches_the_limit() -> None:
    bucket = TokenBucket(50_000.0, now=0.0)
    now, sent = 0.0, 0
    while now < 20.0:
        now = bucket.next_available(16384, now)
        bucket.consume(16384, now)
        sent += 16384
    assert sent / now == pytest.approx(50_000.0, rel=0.1)


def test_unlimited_bucket_never_waits() -> None:
    bucket = TokenBucket(None, now=0.0)
    bucket.consume(10**12, 0.0)
    assert bucket.delay(10**12, 0.0) == 0.0
    assert bucket.available(1.0) == math.inf
    assert TokenBucket(0, now=0.0).unlimited


def test_tokens_never_exceed_burst_and_time_going_backwards_is_harmless() -> None:
    bucket = TokenBucket(1000.0, now=0.0, burst=2000.0)
    assert bucket.available(1e6) == 2000.0
    assert bucket.available(5.0) == 2000.0


def test_changing_the_rate_keeps_debt() -> None:
    bucket = TokenBucket(1000.0, now=0.0, burst=1000.0)
    bucket.consume(3000, 0.0)
    bucket.set_rate(2000.0, 0.0, burst=2000.0)
    assert bucket.delay(1000, 0.0) == pytest.approx(1.5)


def test_global_and_per_torrent_limits_combine_to_the_strictest() -> None:
    global_limit = TokenBucket(10_000.0, now=0.0, burst=10_000.0)
    torrent_limit = TokenBucket(1_000.0, now=0.0, burst=1_000.0)
    for bucket in (global_limit, torrent_limit):
        bucket.consume(1_000, 0.0)
    assert delay_for(500, 0.0, global_limit, torrent_limit) == pytest.approx(0.5)
    assert delay_for(2000, 0.0) == 0.0


def test_negative_rate_is_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(-1.0, now=0.0)
