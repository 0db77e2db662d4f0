"""Direct messages that must arrive: the sender's outbox and the recipient's memory of IDs.

The outbox keeps every message until its recipient acknowledges it, and says
when each is due for another attempt: after a failure it waits 2 s, doubling
to at most 60 s, with jitter so many senders do not retry in step, and gives
up after a week. The node stores the outbox in its state database so it
survives restarts; this core only decides *when*. ``docs/gossip.md`` has the
frames (``msg``, ``ack``).
"""

from __future__ import annotations

import heapq
import random
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OutboxConfig:
    first_retry: float = 2.0
    max_retry: float = 60.0
    jitter: float = 0.2
    give_up_after: float = 7 * 24 * 3600.0


@dataclass(slots=True)
class OutgoingMessage:
    id: bytes
    recipient: bytes
    payload: bytes
    created: float
    attempts: int = 0
    next_attempt: float = 0.0
    in_flight: bool = False
    last_error: str | None = None


class Outbox:
    """Messages waiting for their acknowledgement, and when to try each again."""

    def __init__(self, *, rng: random.Random, config: OutboxConfig | None = None) -> None:
        self.config = config or OutboxConfig()
        self._rng = rng
        self._messages: dict[bytes, OutgoingMessage] = {}
        self._schedule: list[tuple[float, bytes]] = []

    def __len__(self) -> int:
        return len(self._messages)

    def pending(self) -> list[OutgoingMessage]:
        return sorted(self._messages.values(), key=lambda message: message.created)

    def queue(self, message_id: bytes, recipient: bytes, payload: bytes, now: float) -> None:
        """A new message, due at once."""
        self.restore(OutgoingMessage(message_id, recipient, payload, now, next_attempt=now))

    def restore(self, message: OutgoingMessage) -> None:
        """Put back a message loaded from storage (after a restart nothing is in flight)."""
        message.in_flight = False
        self._messages[message.id] = message
        heapq.heappush(self._schedule, (message.next_attempt, message.id))

    def due(self, now: float) -> list[OutgoingMessage]:
        """Messages to attempt now; they stay in flight until delivered or failed."""
        ready: list[OutgoingMessage] = []
        schedule = self._schedule
        while schedule and schedule[0][0] <= now:
            when, ident = heapq.heappop(schedule)
            message = self._messages.get(ident)
            if message is None or message.in_flight or message.next_attempt != when:
                continue  # delivered, already out, or rescheduled since
            message.in_flight = True
            message.attempts += 1
            ready.append(message)
        return ready

    def delivered(self, message_id: bytes) -> OutgoingMessage | None:
        """The recipient acknowledged: the message leaves the outbox."""
        return self._messages.pop(message_id, None)

    def failed(self, message_id: bytes, now: float, reason: str) -> OutgoingMessage | None:
        """An attempt failed: schedule the next, or return the message when it is given up."""
        message = self._messages.get(message_id)
        if message is None:
            return None
        message.in_flight = False
        message.last_error = reason
        if now - message.created >= self.config.give_up_after:
            del self._messages[message_id]
            return message
        self._reschedule(message, now + self._backoff(message.attempts))
        return None

    def recipient_reachable(self, recipient: bytes, now: float) -> None:
        """A channel to ``recipient`` just opened: its waiting messages are due now."""
        for message in self._messages.values():
            if message.recipient == recipient and not message.in_flight:
                self._reschedule(message, now)

    def next_timer(self) -> float | None:
        schedule = self._schedule
        while schedule:
            when, ident = schedule[0]
            message = self._messages.get(ident)
            if message is not None and not message.in_flight and message.next_attempt == when:
                return when
            heapq.heappop(schedule)
        return None

    def _backoff(self, attempts: int) -> float:
        config = self.config
        base = min(config.max_retry, config.first_retry * 2.0 ** max(attempts - 1, 0))
        return base * (1.0 + self._rng.uniform(-config.jitter, config.jitter))

    def _reschedule(self, message: OutgoingMessage, when: float) -> None:
        message.next_attempt = when
        heapq.heappush(self._schedule, (when, message.id))


class SeenIds:
    """The recipient's memory of message IDs, so a retried message is shown once.

    Bounded: the oldest IDs are forgotten past ``capacity`` (a sender gives up
    long before that many newer messages arrive).
    """

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[bytes, None] = OrderedDict()

    def first_time(self, message_id: bytes) -> bool:
        """Record ``message_id``; true only the first time it is seen."""
        if message_id in self._ids:
            return False
        self._ids[message_id] = None
        if len(self._ids) > self.capacity:
            self._ids.popitem(last=False)
        return True
