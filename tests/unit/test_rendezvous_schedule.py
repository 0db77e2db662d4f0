"""When a BEP 55 rendezvous is asked for, and how long direct dials wait meanwhile."""

from __future__ import annotations

from servent.net.known_peers import KnownPeers
from servent.proto.rendezvous_schedule import (
    MAX_ASKS,
    MAX_TRACKED,
    RENDEZVOUS_INTERVAL,
    STRAY_EXPIRY,
    RendezvousSchedule,
)

PEER = ("11.78.0.1", 6881)


def test_the_first_rendezvous_goes_out_at_once_after_a_failed_dial() -> None:
    schedule = RendezvousSchedule()
    schedule.dialling(PEER, 100.0)  # the direct dial, which failed
    assert schedule.due(PEER, 100.5)  # no STRAY_EXPIRY wait before the first one


def test_a_retry_waits_for_the_stray_entry_of_our_last_dial_to_expire() -> None:
    schedule = RendezvousSchedule()
    schedule.asked(PEER, 0.0)
    assert not schedule.due(PEER, 1.0)
    schedule.dialling(PEER, 10.0)  # the punch's own uTP dial, until 10 s
    assert not schedule.due(PEER, 10.0 + STRAY_EXPIRY - 0.1)
    assert schedule.due(PEER, 10.0 + STRAY_EXPIRY)


def test_without_a_dial_since_the_second_ask_waits_stray_expiry_then_the_interval() -> None:
    schedule = RendezvousSchedule()
    schedule.asked(PEER, 0.0)
    assert not schedule.due(PEER, STRAY_EXPIRY - 0.1)
    assert schedule.due(PEER, STRAY_EXPIRY)
    schedule.asked(PEER, STRAY_EXPIRY)
    assert not schedule.due(PEER, STRAY_EXPIRY + RENDEZVOUS_INTERVAL - 0.1)
    assert schedule.due(PEER, STRAY_EXPIRY + RENDEZVOUS_INTERVAL)


def test_asks_are_bounded_per_address_and_then_direct_dials_are_free_again() -> None:
    schedule = RendezvousSchedule()
    now, asks = 0.0, 0
    while now < 3600.0:  # an hour of ticks every 0.5 s: no storm
        if schedule.due(PEER, now):
            schedule.asked(PEER, now)
            asks += 1
        now += 0.5
    assert asks == MAX_ASKS
    assert schedule.hold_until(PEER, now) is None


def test_direct_dials_wait_until_past_the_next_retry() -> None:
    schedule = RendezvousSchedule()
    assert schedule.hold_until(PEER, 0.0) is None  # nothing asked: dial as usual
    schedule.asked(PEER, 0.0)
    hold = schedule.hold_until(PEER, 0.0)
    assert hold is not None and hold > STRAY_EXPIRY
    assert not schedule.due(PEER, hold - 1.5)
    assert schedule.due(PEER, hold - 1.0)  # the retry comes before a direct dial may
    schedule.dialling(PEER, 12.0)  # a punch dial moves the retry, and the hold with it
    later = schedule.hold_until(PEER, 12.0)
    assert later is not None and later > 12.0 + STRAY_EXPIRY
    assert not schedule.due(PEER, later - 1.5)
    assert schedule.due(PEER, later - 1.0)


def test_the_tables_stay_bounded() -> None:
    schedule = RendezvousSchedule()
    for port in range(MAX_TRACKED + 5):
        schedule.dialling(("11.78.0.1", port), 0.0)
        schedule.asked(("11.78.0.1", port), 0.0)
    assert len(schedule._last_dial) <= MAX_TRACKED
    assert len(schedule._asked) <= MAX_TRACKED


def test_a_deferred_address_is_not_dialled_directly_until_the_hold_ends() -> None:
    known = KnownPeers()
    known.add(PEER, source="pex")
    known.failed(PEER, 10.0, "timed out")  # back-off: due again at 11 s
    known.defer(PEER, 50.0)
    assert [p.address for p in known.due(49.9, 5)] == []
    assert [p.address for p in known.due(50.0, 5)] == [PEER]
    known.defer(PEER, 20.0)  # never brings a dial forward
    assert known.due(49.9, 5) == []
