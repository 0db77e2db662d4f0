"""TCP simultaneous open for BEP 55: the role both ends agree on, and the SYN schedule."""

from __future__ import annotations

import itertools

import pytest

from servent.codec.bencode import encode
from servent.proto.peerwire.extensions import parse_extension_handshake
from servent.proto.tcp_punch import PunchRole, PunchSchedule, punch_role

ENDPOINTS = [
    ("11.77.0.1", 6881),
    ("11.77.0.1", 6882),
    ("11.78.0.1", 6881),
    ("9.255.255.255", 65535),
    ("100.64.0.1", 1),
]


@pytest.mark.parametrize(("one", "other"), list(itertools.permutations(ENDPOINTS, 2)))
def test_exactly_one_end_initiates(one: tuple[str, int], other: tuple[str, int]) -> None:
    """Each end sees itself as ``own`` and the other as ``peer``: one initiator, one
    responder, whichever end asks."""
    assert {punch_role(one, other), punch_role(other, one)} == set(PunchRole)


def test_the_lower_endpoint_initiates_address_first_then_port() -> None:
    assert punch_role(("11.77.0.1", 9000), ("11.78.0.1", 80)) is PunchRole.INITIATOR
    assert punch_role(("11.78.0.1", 80), ("11.77.0.1", 9000)) is PunchRole.RESPONDER
    # Behind one NAT (the same public address) the ports decide.
    assert punch_role(("11.77.0.1", 6881), ("11.77.0.1", 6882)) is PunchRole.INITIATOR
    # Compared as numbers, not as text ("9." sorts after "100." as text).
    assert punch_role(("9.0.0.1", 1), ("100.0.0.1", 1)) is PunchRole.INITIATOR
    assert punch_role(("2001:db8::1", 1), ("2001:db8::2", 1)) is PunchRole.INITIATOR


def test_no_role_without_two_comparable_endpoints() -> None:
    assert punch_role(("11.77.0.1", 6881), ("11.77.0.1", 6881)) is None  # ourselves
    assert punch_role(("11.77.0.1", 6881), ("2001:db8::1", 6881)) is None  # two families
    assert punch_role(("not an address", 1), ("11.77.0.1", 6881)) is None


def test_the_first_attempt_starts_at_once_and_retries_keep_their_gap() -> None:
    schedule = PunchSchedule(window=10.0, retry_gap=1.0, attempts=4)
    assert schedule.next_attempt(started=100.0, now=100.0, failed=0) == 100.0
    assert schedule.next_attempt(started=100.0, now=100.2, failed=1) == pytest.approx(101.2)
    assert schedule.next_attempt(started=100.0, now=103.0, failed=3) == pytest.approx(104.0)
    assert schedule.deadline(100.0) == 110.0


def test_the_schedule_gives_up_after_its_attempts_or_its_window() -> None:
    schedule = PunchSchedule(window=10.0, retry_gap=1.0, attempts=4)
    assert schedule.next_attempt(started=0.0, now=1.0, failed=4) is None
    assert schedule.next_attempt(started=0.0, now=9.0, failed=1) is None  # 10.0 is too late
    assert schedule.next_attempt(started=0.0, now=8.9, failed=1) == pytest.approx(9.9)


def test_a_run_of_immediate_refusals_is_bounded() -> None:
    """Every attempt refused at once (a NAT that answers with a reset): the attempts
    stop by themselves, inside the window."""
    schedule = PunchSchedule()
    now, failed, times = 0.0, 0, []
    while (at := schedule.next_attempt(0.0, now, failed)) is not None:
        times.append(at)
        now, failed = at, failed + 1
    assert len(times) == schedule.attempts
    assert times == sorted(times) and times[-1] < schedule.window


def test_a_schedule_without_window_or_attempts_is_refused() -> None:
    with pytest.raises(ValueError, match="window"):
        PunchSchedule(window=0.0)
    with pytest.raises(ValueError, match="attempts"):
        PunchSchedule(attempts=0)


def test_our_public_ip_comes_from_the_relays_yourip() -> None:
    """Our half of the endpoints: the introducing peer's BEP 10 ``yourip``; a missing or
    malformed one gives None (then no TCP punch is tried)."""
    assert parse_extension_handshake(encode({b"yourip": bytes([11, 77, 0, 1])})).your_ip == (
        "11.77.0.1"
    )
    six = bytes.fromhex("20010db8000000000000000000000001")
    assert parse_extension_handshake(encode({b"yourip": six})).your_ip == "2001:db8::1"
    for hostile in ({}, {b"yourip": b"\x0b\x4d\x00"}, {b"yourip": 7}, {b"yourip": bytes(5)}):
        assert parse_extension_handshake(encode(hostile)).your_ip is None
