"""Round-trip estimation (RFC 6298 SRTT/RTTVAR) behind the DHT's lookup timeouts."""

from __future__ import annotations

import pytest

from servent.proto.dht.rtt import RoundTripEstimator, smoothed


def test_first_sample_sets_srtt_and_half_of_it_as_variation() -> None:
    estimator = RoundTripEstimator()
    assert estimator.timeout(1.0, 0.2, 1.5) == 1.0  # nothing measured: the initial value
    estimator.observe(0.1)
    assert estimator.srtt == pytest.approx(0.1) and estimator.rttvar == pytest.approx(0.05)
    assert estimator.timeout(1.0, 0.2, 1.5) == pytest.approx(0.3)  # SRTT + 4 RTTVAR


def test_steady_answers_shrink_the_timeout_to_the_floor() -> None:
    estimator = RoundTripEstimator()
    for _ in range(50):
        estimator.observe(0.08)
    assert estimator.srtt == pytest.approx(0.08, rel=1e-3)
    assert estimator.rttvar < 0.001
    assert estimator.timeout(1.0, 0.2, 1.5) == 0.2
    assert estimator.late_after(0.5, 0.05) == pytest.approx(0.08, rel=0.02)


def test_scattered_answers_widen_the_timeout_up_to_the_ceiling() -> None:
    estimator = RoundTripEstimator()
    for sample in [0.05, 0.9, 0.05, 1.2, 0.07, 1.5] * 5:
        estimator.observe(sample)
    assert estimator.timeout(1.0, 0.2, 1.5) == 1.5
    assert estimator.late_after(0.5, 0.05) < 1.5


def test_negative_sample_is_ignored() -> None:
    estimator = RoundTripEstimator()
    estimator.observe(-1.0)
    assert estimator.samples == 0


def test_per_contact_smoothing_starts_from_the_first_sample() -> None:
    assert smoothed(0.0, 0.2) == 0.2
    assert smoothed(0.2, 1.0) == pytest.approx(0.3)
