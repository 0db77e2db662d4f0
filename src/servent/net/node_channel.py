"""One node channel over TCP, and its streams as async message queues.

:class:`NodeChannel` drives one sans-IO
:class:`~servent.proto.channel.ChannelConnection` over one socket and runs
the protocol handlers of the streams the peer opens; :class:`NodeStream` is
one stream.  Dialling, accepting and the protocol registry belong to
:class:`~servent.net.channel_host.ChannelHost`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol, cast

from servent.codec.node_id import format_node_id
from servent.proto.channel import (
    ChannelConnection,
    ChannelError,
    ChannelHandshakeError,
    ChannelStateError,
    CloseCode,
    ConnectionClosed,
    HandshakeComplete,
    MessageReceived,
    StreamEnded,
    StreamOpened,
    StreamReset,
)

__all__ = ["NodeChannel", "NodeStream", "ProtocolRegistry", "StreamHandler"]

log = logging.getLogger(__name__)

StreamHandler = Callable[["NodeStream"], Awaitable[None]]
#: Unread messages over all streams of a channel above which reading pauses.
BACKLOG_HIGH = 256
BACKLOG_LOW = 64


class ProtocolRegistry:
    """Protocol name -> handler; a feature registers itself, the channel never grows an if."""

    def __init__(self) -> None:
        self._handlers: dict[str, StreamHandler] = {}

    def register(self, name: str, handler: StreamHandler) -> None:
        if name in self._handlers:
            raise ValueError(f"protocol {name} is already registered")
        self._handlers[name] = handler

    def __contains__(self, name: object) -> bool:
        return name in self._handlers

    def handler(self, name: str) -> StreamHandler:
        return self._handlers[name]


class NodeStream:
    """One stream: messages in order; :meth:`receive` gives ``None`` once the peer is done."""

    def __init__(self, channel: NodeChannel, stream_id: int, protocol: str) -> None:
        self.channel = channel
        self.stream_id = stream_id
        self.protocol = protocol
        self._inbox: asyncio.Queue[bytes | None] = asyncio.Queue()
        #: Messages delivered and not yet read (they hold the channel's read back-pressure).
        self.unread = 0
        self._counted = True  # unread messages count in the channel's backlog
        self.closed_for_sending = False
        self.ended_by_peer = False
        #: ``(code, reason)`` when the peer reset the stream.
        self.reset_by_peer: tuple[int, str] | None = None

    async def receive(self) -> bytes | None:
        message = await self._inbox.get()
        if message is None:
            self._inbox.put_nowait(None)  # every later call sees the end too
        else:
            self.unread -= 1
            if self._counted:
                self.channel._messages_taken(1)
        return message

    def send(self, data: bytes) -> None:
        """Queue one message (at most 64 KiB) and write it out."""
        self.channel._call(lambda conn: conn.send_message(self.stream_id, data))

    async def drain(self) -> None:
        """Wait while the socket's write buffer is full (back-pressure for bulk senders)."""
        await self.channel.wait_writable()

    def close(self) -> None:
        """Send nothing more; the peer may still answer."""
        if not self.closed_for_sending:
            self.closed_for_sending = True
            with contextlib.suppress(ChannelStateError):
                self.channel._call(lambda conn: conn.close_stream(self.stream_id))
            self.channel._forget_if_done(self)

    def reset(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Abort both directions; unread messages are dropped."""
        with contextlib.suppress(ChannelStateError):
            self.channel._call(lambda conn: conn.reset_stream(self.stream_id, code, reason))
        self.closed_for_sending = self.ended_by_peer = True
        self._drop_unread()
        self._end()
        self.channel._forget_if_done(self)

    def _deliver(self, data: bytes) -> None:
        self.unread += 1
        self._inbox.put_nowait(data)

    def _end(self) -> None:
        self._inbox.put_nowait(None)

    def _drop_unread(self) -> None:
        while not self._inbox.empty():
            self._inbox.get_nowait()
        self.channel._messages_taken(self.unread if self._counted else 0)
        self.unread = 0


class ChannelOwner(Protocol):
    """What a channel asks of the host that made it (a ``ChannelHost``)."""

    protocols: ProtocolRegistry

    def _admit(self, channel: NodeChannel) -> bool: ...

    def _channel_over(self, channel: NodeChannel, *, held_slot: bool) -> None: ...


class NodeChannel(asyncio.Protocol):
    """Moves bytes between a socket and a :class:`ChannelConnection`; owns handler tasks."""

    def __init__(self, host: ChannelOwner, conn: ChannelConnection) -> None:
        self.host = host
        self.conn = conn
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        #: Resolves to the peer's Ed25519 key, or fails with the ChannelError.
        self.handshake_done: asyncio.Future[bytes] = self.loop.create_future()
        self.closed = asyncio.Event()
        self.close_event: ConnectionClosed | None = None
        self.streams: dict[int, NodeStream] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._backlog = 0
        self._reading_paused = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._holds_slot = False

    @property
    def peer_key(self) -> bytes | None:
        return self.conn.peer_key

    @property
    def peer_id(self) -> str | None:
        return None if self.conn.peer_key is None else format_node_id(self.conn.peer_key)

    # -- asyncio protocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._pump()

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data, self.loop.time())
        self._pump()

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.close_event is None:
            error = ChannelHandshakeError(f"connection lost: {exc or 'closed by the peer'}")
            if self.conn.peer_key is None:
                self.conn.error = error
            self.conn.close(CloseCode.NORMAL, str(error))
            self.conn.data_to_send()  # nowhere to write it
            self._handle_events()
        self._shut()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    @property
    def writable(self) -> bool:
        """Whether the transport takes more data now (its write buffer is below its mark)."""
        return self._writable.is_set()

    async def wait_writable(self) -> None:
        """Return once the transport takes more data (at once when the channel is over)."""
        await self._writable.wait()

    # -- the sans-IO core ------------------------------------------------------------

    def _call(self, action: Callable[[ChannelConnection], object]) -> object:
        result = action(self.conn)
        self._pump()
        return result

    def _pump(self) -> None:
        """Handle the core's events, write what it queued, re-arm its timer."""
        self._handle_events()
        out = self.conn.data_to_send()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if out:
            transport.write(out)
        if self.close_event is not None:
            transport.close()
            self._shut()
            return
        self._arm_timer()

    def _arm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        when = self.conn.get_timer()
        if when is not None:
            self._timer = self.loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.conn.handle_timer(self.loop.time())
        self._pump()

    def _handle_events(self) -> None:
        while (event := self.conn.next_event()) is not None:
            if isinstance(event, MessageReceived):
                stream = self.streams.get(event.stream_id)
                if stream is not None:
                    stream._deliver(event.data)
                    self._backlog += 1
                    self._maybe_pause()
            elif isinstance(event, StreamOpened):
                self._start_handler(event)
            elif isinstance(event, StreamEnded | StreamReset):
                self._stream_over(event)
            elif isinstance(event, HandshakeComplete):
                self._handshake_complete(event)
            elif isinstance(event, ConnectionClosed):
                self._closed(event)

    def _handshake_complete(self, event: HandshakeComplete) -> None:
        if not self.host._admit(self):
            self.conn.close(CloseCode.REFUSED, "connection limit reached")
            return
        self._holds_slot = True
        if not self.handshake_done.done():
            self.handshake_done.set_result(event.peer_key)

    def _start_handler(self, event: StreamOpened) -> None:
        stream = NodeStream(self, event.stream_id, event.protocol)
        self.streams[event.stream_id] = stream
        handler = self.host.protocols.handler(event.protocol)
        task = self.loop.create_task(self._run_handler(handler, stream))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_handler(self, handler: StreamHandler, stream: NodeStream) -> None:
        """Run a protocol handler; when it returns, the stream is over for it."""
        try:
            await handler(stream)
        except (ChannelError, ConnectionError) as exc:
            log.debug("%s handler for %s stopped: %s", stream.protocol, self.peer_id, exc)
        except Exception:
            log.exception("%s handler for %s failed", stream.protocol, self.peer_id)
            stream.reset(CloseCode.PROTOCOL_ERROR, "handler failed")
        finally:
            if stream.ended_by_peer:
                stream.close()
            else:  # the peer may still be sending: nobody will read it
                stream.reset(CloseCode.NORMAL, "handler finished")

    def _stream_over(self, event: StreamEnded | StreamReset) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is None:
            return
        stream.ended_by_peer = True
        if isinstance(event, StreamReset):
            stream.reset_by_peer = (event.code, event.reason)
            stream.closed_for_sending = True
            stream._drop_unread()
        stream._end()
        self._forget_if_done(stream)

    def _forget_if_done(self, stream: NodeStream) -> None:
        """Stop tracking a stream that is over both ways (its owner may still read what
        arrived: those messages are in memory already and no longer hold back reading)."""
        if not (stream.closed_for_sending and stream.ended_by_peer):
            return
        if self.streams.get(stream.stream_id) is stream:
            del self.streams[stream.stream_id]
        if stream._counted:
            stream._counted = False
            self._messages_taken(stream.unread)

    def _closed(self, event: ConnectionClosed) -> None:
        self.close_event = event
        if not self.handshake_done.done():
            error = self.conn.error or ChannelError(f"channel closed: {event.reason}")
            self.handshake_done.set_exception(error)
            self.handshake_done.exception()  # retrieved: a listener-side channel has no waiter
        for stream in self.streams.values():
            stream._end()
        if event.error is not None:
            log.debug("node channel with %s dropped: %s", self._peer_name(), event.error)

    def _shut(self) -> None:
        """The connection is over: stop timers and handlers, give the slot back."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for task in self._tasks:
            task.cancel()
        self._writable.set()  # a writer waiting on a dead channel finds out by sending
        held, self._holds_slot = self._holds_slot, False
        self.host._channel_over(self, held_slot=held)
        self.closed.set()

    def _peer_name(self) -> str:
        if self.peer_id is not None:
            return self.peer_id
        return "?" if self.transport is None else str(self.transport.get_extra_info("peername"))

    # -- back-pressure ---------------------------------------------------------------

    def _maybe_pause(self) -> None:
        if self._backlog > BACKLOG_HIGH and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()

    def _messages_taken(self, count: int) -> None:
        self._backlog -= count
        if self._reading_paused and self._backlog < BACKLOG_LOW and self.transport:
            self._reading_paused = False
            self.transport.resume_reading()

    # -- what the owner does ---------------------------------------------------------

    def open_stream(self, protocol: str) -> NodeStream:
        """A new stream of ``protocol``; send at once (an unknown protocol ends it)."""
        stream_id = cast(int, self._call(lambda conn: conn.open_stream(protocol)))
        stream = NodeStream(self, stream_id, protocol)
        self.streams[stream_id] = stream
        return stream

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        self._call(lambda conn: conn.close(code, reason))

    async def wait_closed(self) -> None:
        await self.closed.wait()
