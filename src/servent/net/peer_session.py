"""One TCP peer connection: moves bytes between a socket and a sans-IO PeerConnection.

Why an :class:`asyncio.BufferedProtocol` and not streams: the event loop reads
straight into a buffer we hand it (one large ``recv_into`` per wake-up, up to
``READ_SIZE`` bytes), and the :class:`~servent.proto.peerwire.PeerConnection`
parses them in place (``borrow_input``: only a frame cut by the end of a read
is copied), so the read buffer can be one per process, shared by every
connection: ``buffer_updated`` runs synchronously after the read, pulls every
event and hands them to the handler before anything touches the buffer again.
A received block is therefore a view valid only inside the handler call.
Consecutive blocks come as one :class:`~servent.proto.peerwire.BlocksReceived`
event (``batch_blocks``), so a read of 64 blocks is one event, not 64; and a
read that begins with blocks goes first to the handler's ``on_read`` (the
leecher's lane, decision 0057), which takes them with no event at all.
Events are handed to the session's *handler* (the torrent session, or the
listener until the torrent is known) as a list per read, which lets the
handler batch its replies: queued messages are written with one
``writelines`` per connection per loop iteration.

Timeouts (handshake, idle, request) live in the sans-IO connection; this
driver only arms one loop timer at ``conn.next_timer()``.  Back-pressure on
writes is exposed as :meth:`PeerSession.wait_writable`; a download rate limit
pauses reading until the token buckets allow more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Sequence
from typing import Protocol, cast

from servent.errors import PeerWireError
from servent.proto.peerwire import (
    ConnectionState,
    ConnectionTimedOut,
    Event,
    Message,
    PeerConnection,
)
from servent.proto.ratelimit import TokenBucket, delay_for

__all__ = ["READ_SIZE", "PeerHandler", "PeerSession"]

log = logging.getLogger(__name__)

#: Bytes asked for per read.  Large reads mean few wake-ups per MiB.
READ_SIZE = 1024 * 1024
#: Reads are cut to this size while a download rate limit applies (finer pacing).
LIMITED_READ_SIZE = 64 * 1024
#: Transport write buffer: above HIGH the uploader waits, below LOW it resumes.
WRITE_HIGH = 4 * 1024 * 1024
WRITE_LOW = 1024 * 1024

_shared_buffer = bytearray(READ_SIZE)
_shared_view = memoryview(_shared_buffer)


class PeerHandler(Protocol):
    """Who receives a session's events (a torrent session, or the listener)."""

    def peer_events(self, session: PeerSession, events: list[Event]) -> None: ...

    def peer_closed(self, session: PeerSession) -> None: ...


class PeerSession(asyncio.BufferedProtocol):
    """Drives one :class:`PeerConnection` over one TCP connection."""

    def __init__(self, conn: PeerConnection, handler: PeerHandler) -> None:
        self.conn = conn
        # The shared read buffer is not touched again before drain_events has
        # pulled every event and the handler has run: the connection may parse
        # it in place and hand blocks out as views (one copy fewer per byte).
        conn.borrow_input = True
        # Blocks come as one event per run of piece messages (one per read, mostly).
        conn.batch_blocks = True
        # Whatever queues a message on the connection cues a write: nobody flushes by hand.
        conn.on_output = self.schedule_flush
        self.handler = handler
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        #: ``(host, port)`` of the remote end, once connected.
        self.address: tuple[str, int] = ("", 0)
        #: Why the session ended (``None`` while open).
        self.close_reason: str | None = None
        #: The protocol error that ended it, if any (decides bans).
        self.error: PeerWireError | None = None
        #: Download rate limits that apply to this connection (torrent, global).
        self.download_buckets: Sequence[TokenBucket] = ()
        self.bytes_received = 0
        #: ``on_read(session, read, now)``: the handler takes the blocks a read begins with
        #: and returns the bytes it took (``PeerConnection.take_blocks``); the rest come as
        #: events.  A downloading torrent sets it (``None``: all come as events).
        self.on_read: Callable[[PeerSession, memoryview, float], int] | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = asyncio.Event()
        self._flush_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = float("inf")
        self._throttle: asyncio.TimerHandle | None = None
        self._reading_paused = False
        self._held_off = False  # reading paused by the handler (e.g. disk behind)

    # ---------------------------------------------------------------- protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports are not subclasses.
        self.transport = transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        if peer:
            self.address = (str(peer[0]), int(peer[1]))
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=WRITE_HIGH, low=WRITE_LOW)
        self.flush()  # an outgoing connection's handshake
        self._arm_timer()

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.download_buckets:
            return _shared_view[:LIMITED_READ_SIZE]
        return _shared_view

    def buffer_updated(self, nbytes: int) -> None:
        now = self.loop.time()
        self.bytes_received += nbytes
        data = _shared_view[:nbytes]
        on_read = self.on_read
        if on_read is not None and not self.download_buckets and self.close_reason is None:
            # The lane: the handler takes the blocks the read begins with, the rest goes on.
            taken = on_read(self, data, now)
            if taken == nbytes or self.close_reason is not None:
                return
            data = data[taken:]
        try:
            self.conn.receive_data(data, now)
        except PeerWireError as exc:
            self._fail(exc)
            return
        self.drain_events()
        if self.download_buckets and self.transport is not None:
            for bucket in self.download_buckets:
                bucket.consume(nbytes, now)
            # Only a connection that carries pieces waits for the limit: another's
            # messages (PEX, a BEP 55 rendezvous) are counted but not held back.
            if self.conn.expects_blocks:
                delay = delay_for(LIMITED_READ_SIZE, now, *self.download_buckets)
                if delay > 0:
                    self._pause_for(delay)

    def eof_received(self) -> bool | None:
        with contextlib.suppress(PeerWireError):
            self.conn.receive_data(b"")
        self.drain_events()
        self.close("peer closed the connection")
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.close_reason is None:
            self.close_reason = f"connection lost: {exc}" if exc else "connection lost"
        self._finish()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # ---------------------------------------------------------------- events

    def drain_events(self) -> None:
        """Parse buffered input and hand the events to the handler (repeats if it changed)."""
        conn = self.conn
        while self.close_reason is None:
            handler = self.handler
            events: list[Event] = []
            try:
                while (event := conn.next_event()) is not None:
                    events.append(event)
            except PeerWireError as exc:
                if events:
                    handler.peer_events(self, events)
                self._fail(exc)
                return
            if events:
                handler.peer_events(self, events)
            if self.handler is handler or self.close_reason is not None:
                break
        if conn.state is ConnectionState.CLOSED and self.close_reason is None:
            self.close("connection closed")

    # ---------------------------------------------------------------- sending

    def send(self, message: Message) -> None:
        """Queue ``message``; it is written at the end of this loop iteration."""
        self.conn.send(message)  # the connection's output hook schedules the write

    def schedule_flush(self) -> None:
        if not self._flush_scheduled and self.close_reason is None:
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write everything the connection queued, in one ``writelines``."""
        self._flush_scheduled = False
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        chunks = self.conn.chunks_to_send()
        if chunks:
            transport.writelines(chunks)
        when = self.conn.next_timer()
        if when is not None and when < self._timer_at - 0.5:
            self._arm_timer()

    @property
    def writable(self) -> bool:
        return self._writable.is_set()

    async def wait_writable(self) -> None:
        """Wait until the socket's write buffer drained below its low mark."""
        await self._writable.wait()

    def write_buffer_size(self) -> int:
        transport = self.transport
        return 0 if transport is None else transport.get_write_buffer_size()

    # ---------------------------------------------------------------- reading

    def hold_off(self, paused: bool) -> None:
        """Stop (or restart) reading, e.g. while the disk is behind."""
        self._held_off = paused
        self._apply_reading()

    def _pause_for(self, delay: float) -> None:
        if self._throttle is not None:
            return
        self._throttle = self.loop.call_later(delay, self._unthrottle)
        self._apply_reading()

    def _unthrottle(self) -> None:
        self._throttle = None
        self._apply_reading()

    def _apply_reading(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        pause = self._held_off or self._throttle is not None
        if pause and not self._reading_paused:
            transport.pause_reading()
        elif not pause and self._reading_paused:
            transport.resume_reading()
        self._reading_paused = pause

    # ---------------------------------------------------------------- timers

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.conn.next_timer()
        if when is None or self.close_reason is not None:
            self._timer_at = float("inf")
            return
        self._timer_at = when
        self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        if self.close_reason is not None:
            return
        now = self.loop.time()
        self.conn.handle_timer(now)
        events: list[Event] = []
        try:
            while (event := self.conn.next_event()) is not None:
                events.append(event)
        except PeerWireError as exc:
            self._fail(exc)
            return
        timed_out = next((e for e in events if isinstance(e, ConnectionTimedOut)), None)
        if events:
            self.handler.peer_events(self, events)
        if timed_out is not None:
            self.close(f"timed out ({timed_out.reason})")
            return
        self.flush()
        self._arm_timer()

    # ---------------------------------------------------------------- closing

    def _fail(self, exc: PeerWireError) -> None:
        log.debug("peer %s: protocol error: %s", self.address, exc)
        self.error = exc
        self.close(f"protocol error: {exc}")

    def close(self, reason: str) -> None:
        """Close the socket; the handler hears :meth:`PeerHandler.peer_closed` once."""
        if self.close_reason is None:
            self.close_reason = reason
        self.conn.close()
        if self.transport is not None and not self.transport.is_closing():
            self.flush()
            self.transport.close()
        elif self.transport is None:
            self._finish()

    def abort(self, reason: str) -> None:
        """Drop the connection without flushing (a peer we ban)."""
        if self.close_reason is None:
            self.close_reason = reason
        self.conn.close()
        if self.transport is not None:
            self.transport.abort()
        else:
            self._finish()

    def _finish(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._writable.set()  # wake an uploader so it sees the end
        for handle in (self._timer, self._throttle):
            if handle is not None:
                handle.cancel()
        self._timer = self._throttle = None
        self.handler.peer_closed(self)

    @property
    def is_closed(self) -> bool:
        return self._closed.is_set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def __repr__(self) -> str:
        host, port = self.address
        return f"<PeerSession {host}:{port} {self.conn.state.value}>"
