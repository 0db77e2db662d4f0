"""The direct-message outbox: due times, back-off, acknowledgement, restart, give-up."""

from __future__ import annotations

import random

from servent.proto.outbox import Outbox, OutboxConfig, OutgoingMessage, SeenIds


def outbox(**overrides: float) -> Outbox:
    return Outbox(rng=random.Random(1), config=OutboxConfig(jitter=0.0, **overrides))


def test_a_new_message_is_due_at_once_and_stays_out_until_answered() -> None:
    box = outbox()
    box.queue(b"m1", b"bob", b"hi", now=100.0)
    assert [m.id for m in box.due(100.0)] == [b"m1"]
    assert box.due(1000.0) == []  # in flight: not attempted twice
    assert box.next_timer() is None
    assert box.delivered(b"m1") is not None and len(box) == 0


def test_failures_back_off_doubling_up_to_the_cap() -> None:
    box = outbox(first_retry=2.0, max_retry=10.0)
    box.queue(b"m", b"bob", b"x", now=0.0)
    now, waits = 0.0, []
    for _ in range(6):
        (message,) = box.due(now)
        assert box.failed(message.id, now, "unreachable") is None
        due = box.next_timer()
        assert due is not None
        waits.append(due - now)
        now = due
    assert waits == [2.0, 4.0, 8.0, 10.0, 10.0, 10.0]


def test_jitter_keeps_retries_apart_within_bounds() -> None:
    box = Outbox(rng=random.Random(5), config=OutboxConfig(first_retry=10.0, jitter=0.2))
    for number in range(20):
        box.queue(bytes([number]), b"bob", b"x", now=0.0)
    for message in box.due(0.0):
        box.failed(message.id, 0.0, "unreachable")
    times = {m.next_attempt for m in box.pending()}
    assert len(times) == 20 and all(8.0 <= t <= 12.0 for t in times)


def test_a_message_is_given_up_after_the_limit_with_its_reason() -> None:
    box = outbox(give_up_after=60.0)
    box.queue(b"m", b"bob", b"x", now=0.0)
    box.due(0.0)
    assert box.failed(b"m", 30.0, "unreachable") is None
    box.due(100.0)
    given_up = box.failed(b"m", 100.0, "no address record")
    assert given_up is not None and given_up.last_error == "no address record"
    assert len(box) == 0


def test_restored_messages_resume_after_a_restart() -> None:
    saved = OutgoingMessage(b"m", b"bob", b"x", created=0.0, attempts=3, next_attempt=50.0,
                            in_flight=True)  # fmt: skip
    box = outbox()
    box.restore(saved)
    assert box.due(49.0) == [] and box.next_timer() == 50.0
    assert [m.attempts for m in box.due(50.0)] == [4]


def test_a_recipient_coming_online_makes_its_messages_due_now() -> None:
    box = outbox(first_retry=60.0)
    box.queue(b"a", b"bob", b"x", now=0.0)
    box.queue(b"b", b"carol", b"x", now=0.0)
    for message in box.due(0.0):
        box.failed(message.id, 0.0, "unreachable")
    box.recipient_reachable(b"bob", 5.0)
    assert [m.id for m in box.due(5.0)] == [b"a"]


def test_seen_ids_show_a_retried_message_once_and_stay_bounded() -> None:
    seen = SeenIds(capacity=3)
    assert seen.first_time(b"1") and not seen.first_time(b"1")
    for ident in (b"2", b"3", b"4"):
        seen.first_time(ident)
    assert seen.first_time(b"1")  # forgotten past the capacity


def test_an_online_peer_whose_first_attempts_failed_is_tried_again_within_seconds() -> None:
    """The default schedule, jitter included: a failed dial to a peer that is online is
    retried after about 2 s, and three attempts fit in well under 10 s."""
    box = Outbox(rng=random.Random(3))
    box.queue(b"m", b"bob", b"x", now=0.0)
    now, retries = 0.0, []
    for _ in range(3):
        (message,) = box.due(now)
        box.failed(message.id, now, "dial failed under load")
        due = box.next_timer()
        assert due is not None
        retries.append(due - now)
        now = due
    assert 1.6 <= retries[0] <= 2.4
    assert sum(retries[:2]) <= 7.2
