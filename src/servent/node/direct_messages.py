"""Direct messages over node channels: the sender's stored outbox and the recipient's inbox.

Sending stores the message first (the outbox survives restarts and kill -9),
then :class:`DirectMessages` attempts it when the :class:`~servent.proto.outbox.Outbox`
core says it is due: it opens (or reuses) a node channel to the recipient,
sends ``msg`` on a ``servent/message/1`` stream and waits, bounded, for the
``ack``.  A failed attempt is retried with the core's back-off; a channel
opening to the recipient makes its messages due at once, and an attempt still
dialling takes that channel instead of waiting out its own dial.  Receiving
stores the message (de-duplicated by its ID) before acknowledging it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from servent.errors import NodeError
from servent.net.channel_host import ChannelHost
from servent.net.node_channel import NodeChannel, NodeStream
from servent.net.owned_tasks import cancel_and_wait
from servent.node.message_store import MessageStore, StoredMessage
from servent.proto.channel import ChannelError, CloseCode
from servent.proto.message_frames import (
    MAX_TEXT,
    MESSAGE_ID_SIZE,
    Ack,
    DirectMessage,
    MessageFrameError,
    decode_message_frame,
    encode_message_frame,
)
from servent.proto.outbox import Outbox, OutgoingMessage
from servent.proto.ratelimit import TokenBucket

__all__ = ["MESSAGE_PROTOCOL", "DirectMessages", "MessagingError", "RateLimitedError"]

log = logging.getLogger(__name__)

MESSAGE_PROTOCOL = "servent/message/1"
#: One attempt (address lookup, dial, handshake, ack) may take this long.
ATTEMPT_TIMEOUT = 30.0
#: Attempts under way at once.
MAX_ATTEMPTS = 16
#: Direct messages accepted per sender per second, and the burst above that.
SENDER_RATE = 5.0
SENDER_BURST = 50.0
#: Messages waiting in the outbox at most (a sender cannot grow it without bound).
MAX_OUTBOX = 10_000
MAX_BUCKETS = 4096

#: Called with each newly stored received message.
OnReceived = Callable[[StoredMessage], None]
#: Called with (message ID, recipient key, when) once a message is acknowledged.
OnDelivered = Callable[[bytes, bytes, float], None]


class MessagingError(NodeError):
    """A message cannot be sent as asked (bad recipient, too large, messaging off)."""


class RateLimitedError(MessagingError):
    """Too many messages in too short a time; ``retry_after`` seconds until the next fits."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def check_text(text: str) -> bytes:
    """The UTF-8 bytes of a message text, refused when empty or above the size bound."""
    payload = text.encode("utf-8")
    if not payload:
        raise MessagingError("the message is empty")
    if len(payload) > MAX_TEXT:
        raise MessagingError(
            f"the message is {len(payload)} bytes; at most {MAX_TEXT} (64 KiB) can be sent"
        )
    return payload


class DirectMessages:
    """Outbox attempts and the ``servent/message/1`` handler of one node."""

    def __init__(
        self,
        host: ChannelHost,
        store: MessageStore,
        *,
        on_received: OnReceived,
        on_delivered: OnDelivered,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._host = host
        self._store = store
        self._on_received = on_received
        self._on_delivered = on_delivered
        self._clock = clock
        self._outbox = Outbox(rng=rng or random.Random())
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(MAX_ATTEMPTS)
        self._tasks: set[asyncio.Task[None]] = set()
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        #: Attempts dialling a recipient, each told when a channel to it opens another way.
        self._dialling: dict[bytes, list[asyncio.Future[NodeChannel]]] = {}
        self._senders: dict[bytes, TokenBucket] = {}
        self.blocked: set[bytes] = set()

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Serve the protocol, put the stored outbox back, start attempting."""
        self._host.protocols.register(MESSAGE_PROTOCOL, self._serve)
        for stored in self._store.outbox():
            self._outbox.restore(
                OutgoingMessage(
                    stored.id, stored.peer, stored.text.encode("utf-8"), stored.time,
                    attempts=stored.attempts, next_attempt=stored.next_attempt,
                    last_error=stored.last_error,
                )
            )  # fmt: skip
        self._spawn(self._run(), "direct-message-outbox")

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)
        waiting: list[asyncio.Future[Any]] = []
        for waiters in self._waiters.values():
            waiting.extend(waiters)
        for dialling in self._dialling.values():
            waiting.extend(dialling)
        for waiter in waiting:
            if not waiter.done():
                waiter.cancel()

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- sending ---------------------------------------------------------------------

    async def send(self, recipient: bytes, text: str) -> StoredMessage:
        """Store a message to ``recipient`` in the outbox and make it due at once."""
        payload = check_text(text)
        if recipient == self._host.keys.public_key:
            raise MessagingError("a message to this node itself is not sent")
        if len(self._outbox) >= MAX_OUTBOX:
            raise RateLimitedError(f"the outbox holds {MAX_OUTBOX} messages already", 60.0)
        now = self._clock()
        message = StoredMessage(
            id=os.urandom(MESSAGE_ID_SIZE), direction="out", kind="direct", peer=recipient,
            channel=None, text=text, time=now, next_attempt=now, read=True,
        )  # fmt: skip
        await asyncio.to_thread(self._store.queue_outgoing, message)
        self._outbox.queue(message.id, recipient, payload, now)
        self._wake.set()
        return message

    def pending(self) -> list[OutgoingMessage]:
        return self._outbox.pending()

    async def wait_delivered(self, message_id: bytes, within: float) -> bool:
        """Wait up to ``within`` seconds for the acknowledgement; true once delivered."""
        stored = self._store.get(message_id)
        if stored is None or stored.delivered is not None:
            return stored is not None
        if stored.failed is not None:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(message_id, []).append(waiter)
        try:
            async with asyncio.timeout(within):
                await waiter
        except TimeoutError:
            return False
        finally:
            waiters = self._waiters.get(message_id, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiters.pop(message_id, None)
        return True

    def recipient_reachable(self, recipient: bytes) -> None:
        """A channel to ``recipient`` opened: its waiting messages go now, and attempts
        still dialling it use this channel."""
        self._outbox.recipient_reachable(recipient, self._clock())
        self._wake.set()
        channel = self._host.channel_to(recipient)
        if channel is not None:
            for opened in self._dialling.pop(recipient, []):
                if not opened.done():
                    opened.set_result(channel)

    async def _run(self) -> None:
        while True:
            for message in self._outbox.due(self._clock()):
                self._spawn(self._attempt(message), "direct-message-attempt")
            when = self._outbox.next_timer()
            self._wake.clear()
            delay = None if when is None else max(0.0, when - self._clock())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _attempt(self, message: OutgoingMessage) -> None:
        try:
            async with self._slots, asyncio.timeout(ATTEMPT_TIMEOUT):
                await self._deliver(message)
        except TimeoutError:
            await self._failed(message, f"no acknowledgement within {ATTEMPT_TIMEOUT:.0f} s")
        except (ChannelError, OSError, MessageFrameError) as exc:
            await self._failed(message, str(exc) or type(exc).__name__)
        except Exception as exc:  # a resolver or DHT failure must not stop the outbox
            log.debug("attempt to send %s failed", message.id.hex(), exc_info=True)
            await self._failed(message, f"{type(exc).__name__}: {exc}")
        else:
            await self._delivered(message)

    async def _channel_to(self, recipient: bytes) -> NodeChannel:
        """The open channel to ``recipient``, else a dial; a channel that opens another
        way meanwhile (the recipient dialled us, a contact dial) ends the wait at once,
        rather than after this dial's lookup and timeouts (a stale address hangs)."""
        existing = self._host.channel_to(recipient)
        if existing is not None:
            return existing
        opened: asyncio.Future[NodeChannel] = asyncio.get_running_loop().create_future()
        self._dialling.setdefault(recipient, []).append(opened)
        dial = asyncio.ensure_future(self._host.connect(recipient))
        try:
            await asyncio.wait((dial, opened), return_when=asyncio.FIRST_COMPLETED)
            return opened.result() if opened.done() else dial.result()
        finally:
            waiting = self._dialling.get(recipient, [])
            if opened in waiting:
                waiting.remove(opened)
            if not waiting:
                self._dialling.pop(recipient, None)
            dial.cancel()  # done already, or no longer needed
            await asyncio.wait((dial,))
            if not dial.cancelled():
                dial.exception()  # a failure that lost the race is not an error to report

    async def _deliver(self, message: OutgoingMessage) -> None:
        channel = await self._channel_to(message.recipient)
        stream = channel.open_stream(MESSAGE_PROTOCOL)
        try:
            frame = DirectMessage(message.id, int(message.created), message.payload)
            stream.send(encode_message_frame(frame))
            while True:
                data = await stream.receive()
                if data is None:
                    reset = stream.reset_by_peer
                    why = f"stream reset by the recipient: {reset[1]}" if reset else "no answer"
                    raise ChannelError(f"{why} before the acknowledgement")
                answer = decode_message_frame(data)
                if isinstance(answer, Ack) and answer.id == message.id:
                    return
        finally:
            stream.close()

    async def _delivered(self, message: OutgoingMessage) -> None:
        self._outbox.delivered(message.id)
        now = self._clock()
        await asyncio.to_thread(self._store.mark_delivered, message.id, now)
        for waiter in self._waiters.pop(message.id, []):
            if not waiter.done():
                waiter.set_result(None)
        self._on_delivered(message.id, message.recipient, now)

    async def _failed(self, message: OutgoingMessage, reason: str) -> None:
        given_up = self._outbox.failed(message.id, self._clock(), reason)
        if given_up is not None:
            await asyncio.to_thread(self._store.mark_failed, message.id, reason)
        else:
            await asyncio.to_thread(
                self._store.record_attempt,
                message.id, message.attempts, message.next_attempt, reason,
            )  # fmt: skip
        self._wake.set()

    # -- receiving -------------------------------------------------------------------

    async def _serve(self, stream: NodeStream) -> None:
        """A peer's ``servent/message/1`` stream: store each message, then acknowledge it."""
        sender = stream.channel.peer_key
        assert sender is not None
        while (data := await stream.receive()) is not None:
            try:
                frame = decode_message_frame(data)
            except MessageFrameError as exc:
                stream.reset(CloseCode.PROTOCOL_ERROR, str(exc)[:200])
                return
            if isinstance(frame, DirectMessage) and await self._accept(sender, frame):
                stream.send(encode_message_frame(Ack(frame.id)))

    async def _accept(self, sender: bytes, frame: DirectMessage) -> bool:
        """Store one received message; false (no ack) when the sender is over its rate."""
        if sender in self.blocked:
            return True  # acknowledged and dropped: the sender stops retrying
        now = self._clock()
        if not self._within_rate(sender, now):
            return False
        message = StoredMessage(
            id=frame.id, direction="in", kind="direct", peer=sender, channel=None,
            text=frame.payload.decode("utf-8", errors="replace"), time=now, received=now,
        )  # fmt: skip
        if await asyncio.to_thread(self._store.receive, message):
            self._on_received(message)
        return True

    def _within_rate(self, sender: bytes, now: float) -> bool:
        bucket = self._senders.get(sender)
        if bucket is None:
            if len(self._senders) >= MAX_BUCKETS:
                self._senders.clear()
            bucket = self._senders[sender] = TokenBucket(SENDER_RATE, now, SENDER_BURST)
        return bucket.try_consume(1.0, now)
