"""The node channel over TCP: dial a node, accept on the peer port, run named protocols.

:class:`ChannelHost` is a node's end of every channel: its keys, the registry
of protocols it serves (``name -> async handler(stream)``, like libp2p's
stream handlers), the channels it dialled or accepted, and the accept hook
the :class:`~servent.net.listener.PeerListener` calls for connections that
start with the channel magic.  :class:`NodeChannel` drives one sans-IO
:class:`~servent.proto.channel.ChannelConnection` over one socket;
:class:`NodeStream` is one stream as an async message queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from typing import cast

from servent.codec.node_id import format_node_id
from servent.net.channel_sniffer import FirstBytesSniffer
from servent.net.limits import GlobalLimits
from servent.proto.channel import (
    ChannelConfig,
    ChannelConnection,
    ChannelError,
    ChannelHandshakeError,
    ChannelStateError,
    ChannelTimeoutError,
    CloseCode,
    ConnectionClosed,
    HandshakeComplete,
    LocalKeys,
    MessageReceived,
    StreamEnded,
    StreamOpened,
    StreamReset,
)

__all__ = ["ChannelHost", "NodeChannel", "NodeStream", "ProtocolRegistry", "StreamHandler"]

log = logging.getLogger(__name__)

StreamHandler = Callable[["NodeStream"], Awaitable[None]]
#: Unread messages over all streams of a channel above which reading pauses.
BACKLOG_HIGH = 256
BACKLOG_LOW = 64
#: How long :meth:`ChannelHost.close` waits for channels to go.
CLOSE_WAIT = 5.0
#: Connections being told apart (first bytes) or in a handshake at once.
MAX_PENDING = 64


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


class NodeChannel(asyncio.Protocol):
    """Moves bytes between a socket and a :class:`ChannelConnection`; owns handler tasks."""

    def __init__(self, host: ChannelHost, conn: ChannelConnection) -> None:
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


class ChannelHost:
    """A node's channels: keys, protocol registry, dialling, and accepting via the listener."""

    def __init__(
        self,
        keys: LocalKeys,
        *,
        config: ChannelConfig | None = None,
        limits: GlobalLimits | None = None,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self.keys = keys
        self.config = config or ChannelConfig()
        self.limits = limits
        self.max_pending = max_pending
        self.protocols = ProtocolRegistry()
        #: Channels whose handshake completed, by the peer's key.
        self.channels: dict[bytes, list[NodeChannel]] = {}
        self._pending: set[object] = set()
        self._all: set[NodeChannel] = set()
        self.refused = 0

    # -- accepting (called by the listener) --------------------------------------------

    def sniffer(self, peer_protocol: Callable[[], asyncio.BaseProtocol]) -> asyncio.BaseProtocol:
        """The protocol for a new incoming connection on the shared port."""
        if len(self._pending) >= self.max_pending:
            self.refused += 1
            return _Refuse()
        sniffer = FirstBytesSniffer(
            self._accept,
            peer_protocol,
            timeout=self.config.handshake_timeout,
            on_done=self._pending.discard,
        )
        self._pending.add(sniffer)
        return sniffer

    def _accept(self, transport: asyncio.Transport, first: bytes, accepted_at: float) -> None:
        channel = self._new_channel(initiator=False, expected=None, now=accepted_at)
        transport.set_protocol(channel)
        channel.connection_made(transport)
        channel.data_received(first)

    def _new_channel(
        self, *, initiator: bool, expected: bytes | None, now: float | None = None
    ) -> NodeChannel:
        conn = ChannelConnection(
            self.keys,
            initiator=initiator,
            now=asyncio.get_running_loop().time() if now is None else now,
            expected_peer=expected,
            protocols=self.protocols,
            config=self.config,
        )
        channel = NodeChannel(self, conn)
        self._all.add(channel)
        if not initiator:
            self._pending.add(channel)
            channel.handshake_done.add_done_callback(lambda _: self._pending.discard(channel))
        return channel

    # -- dialling ------------------------------------------------------------------

    async def dial(self, host: str, port: int, *, expected: bytes | None = None) -> NodeChannel:
        """A channel to ``host:port``, connected and authenticated within the handshake
        timeout; raises :class:`ChannelError` (another node than ``expected``, a failed
        handshake, the timeout) or :class:`OSError`."""
        loop = asyncio.get_running_loop()
        limit = self.config.handshake_timeout
        channel = self._new_channel(initiator=True, expected=expected)
        try:
            async with asyncio.timeout(limit):
                await loop.create_connection(lambda: channel, host, port)
                await channel.handshake_done
        except TimeoutError:
            channel.close(CloseCode.TIMEOUT, "handshake timed out")
            self._forget(channel)
            raise ChannelTimeoutError(f"no channel to {host}:{port} within {limit:.0f} s") from None
        except BaseException:
            if channel.transport is not None:
                channel.transport.abort()
            self._forget(channel)
            raise
        return channel

    # -- bookkeeping -----------------------------------------------------------------

    def _admit(self, channel: NodeChannel) -> bool:
        if self.limits is not None and not self.limits.try_reserve():
            self.refused += 1
            return False
        assert channel.peer_key is not None
        self.channels.setdefault(channel.peer_key, []).append(channel)
        return True

    def _channel_over(self, channel: NodeChannel, *, held_slot: bool) -> None:
        if held_slot and self.limits is not None:
            self.limits.release()
        self._pending.discard(channel)
        self._forget(channel)

    def _forget(self, channel: NodeChannel) -> None:
        self._all.discard(channel)
        if channel.peer_key is not None:
            same = self.channels.get(channel.peer_key, [])
            if channel in same:
                same.remove(channel)
            if not same:
                self.channels.pop(channel.peer_key, None)

    def connected(self) -> Iterator[NodeChannel]:
        for channels in list(self.channels.values()):
            yield from channels

    async def close(self) -> None:
        """GOODBYE to every channel, then wait (bounded) for them to go."""
        channels = list(self._all)
        for channel in channels:
            if channel.close_event is None and channel.transport is not None:
                channel.close(CloseCode.SHUTDOWN, "shutting down")
        if channels:
            await asyncio.wait(
                [asyncio.ensure_future(c.wait_closed()) for c in channels], timeout=5
            )


class _Refuse(asyncio.Protocol):
    """Closes at once: too many connections are being told apart or shaking hands."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()
