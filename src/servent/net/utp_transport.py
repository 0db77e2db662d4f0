"""One uTP connection seen as an :class:`asyncio.Transport`, so protocols run unchanged.

A :class:`~servent.net.peer_session.PeerSession` (or an MSE stream in front of
it) is given a :class:`UtpTransport` instead of a TCP transport: ``write``
queues into the sans-IO :class:`~servent.proto.utp.UtpConnection`, received
bytes go to ``buffer_updated``/``data_received``, the peer's FIN to
``eof_received``. Pausing reading holds received bytes, which shrinks the
window uTP advertises, as a full TCP receive buffer would.
"""

from __future__ import annotations

import asyncio
import errno
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from servent.net.dont_fragment import route_mtu, send_fragmenting
from servent.proto.utp import (
    Connected,
    ConnectionClosed,
    ConnectionState,
    DataReceived,
    PeerFinished,
    UtpConnection,
)

if TYPE_CHECKING:
    from servent.net.udp_demux import UdpPort

__all__ = ["UtpTransport"]

log = logging.getLogger(__name__)

WRITE_HIGH = 1 << 20
#: After close(), how long the connection may still deliver what is in flight and its FIN.
LINGER = 60.0
#: After a clean close, how long the peer's repeated FIN is still acknowledged.
CLOSED_LINGER = 10.0


class UtpTransport(asyncio.Transport):
    """The transport face of one :class:`UtpConnection` on a shared UDP port."""

    def __init__(
        self,
        conn: UtpConnection,
        port: UdpPort,
        address: tuple[str, int],
        forget: Callable[[UtpTransport], None],
    ) -> None:
        super().__init__()
        self.conn = conn
        self.address = address
        self._port = port
        self._forget = forget  # endpoint callback: drop this transport from its table
        self._loop = asyncio.get_running_loop()
        self._protocol: asyncio.BaseProtocol | None = None
        self._buffered = False
        self._held: deque[bytes] = deque()
        self._reading = True
        self._closing = False
        self._lost_reported = False
        self._writing_paused = False
        self._high = WRITE_HIGH
        self._low = WRITE_HIGH // 4
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._pump_scheduled = False
        self._linger: asyncio.TimerHandle | None = None
        self._eof_pending = False  # the peer's FIN came while its last bytes were held
        self.connected: asyncio.Future[None] = self._loop.create_future()
        #: The connection itself has ended: ``None`` once both FINs are acknowledged, an
        #: error after a reset, a timeout, or a linger that ran out first. Unlike
        #: ``connection_lost`` (reported when our bytes are queued, as TCP does), this is
        #: what a process that exits after sending must wait for.
        self.finished: asyncio.Future[None] = self._loop.create_future()

    # ------------------------------------------------------------ asyncio.Transport

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self.address
        if name == "sockname":
            return self._port.address
        if name == "transport":
            return "utp"
        if name == "utp_connection":
            return self.conn
        return default

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol
        self._buffered = isinstance(protocol, asyncio.BufferedProtocol) or hasattr(
            protocol, "get_buffer"
        )

    def get_protocol(self) -> asyncio.BaseProtocol:
        assert self._protocol is not None
        return self._protocol

    def is_closing(self) -> bool:
        return self._closing

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing or not data:
            return
        self.conn.send(data)
        self._after_write()

    def writelines(self, list_of_data: Any) -> None:
        if self._closing:
            return
        for data in list_of_data:
            if data:
                self.conn.send(data)
        self._after_write()

    def can_write_eof(self) -> bool:
        return False

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self.conn.state is not ConnectionState.CLOSED:
            self.conn.close()
        self.schedule_pump()

    def abort(self) -> None:
        self._closing = True
        self.conn.abort()
        self.pump(self._loop.time())

    def pause_reading(self) -> None:
        self._reading = False

    def resume_reading(self) -> None:
        if not self._reading:
            self._reading = True
            self._loop.call_soon(self._deliver_held)

    def is_reading(self) -> bool:
        return self._reading

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._high = WRITE_HIGH if high is None else high
        self._low = self._high // 4 if low is None else low

    def get_write_buffer_size(self) -> int:
        return self.conn.queued_bytes

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._low, self._high

    # ------------------------------------------------------------ driving the core

    def schedule_pump(self) -> None:
        if not self._pump_scheduled:
            self._pump_scheduled = True
            self._loop.call_soon(self._scheduled_pump)

    def _scheduled_pump(self) -> None:
        self._pump_scheduled = False
        self.pump(self._loop.time())

    def _after_write(self) -> None:
        self.schedule_pump()
        if not self._writing_paused and self.conn.queued_bytes > self._high:
            self._writing_paused = True
            if self._protocol is not None:
                self._protocol.pause_writing()

    def pump(self, now: float) -> None:
        """Send what the connection queued, hand its events on, re-arm its timer."""
        conn = self.conn
        sendto = self._port.sock.sendto
        address = self.address
        for datagram in conn.datagrams_to_send(now):
            try:
                sendto(datagram, address)
            except OSError as exc:
                self._send_failed(datagram, exc, now)
        for datagram in conn.take_fragmentable():
            send_fragmenting(self._port.sock, datagram, address)
        received: list[bytes] = []
        while (event := conn.next_event()) is not None:
            if isinstance(event, DataReceived):
                received.append(event.data)  # one hand-over per pump, not one per packet
                continue
            if received:
                self._receive(b"".join(received))
                received.clear()
            if isinstance(event, Connected):
                if not self.connected.done():
                    self.connected.set_result(None)
            elif isinstance(event, PeerFinished):
                self._peer_finished()
            elif isinstance(event, ConnectionClosed):
                self._closed(event)
        if received:
            self._receive(b"".join(received))
        if self._writing_paused and conn.queued_bytes <= self._low:
            self._writing_paused = False
            if self._protocol is not None:
                self._protocol.resume_writing()
        if self._closing and not self._lost_reported and conn.queued_bytes == 0:
            # As a TCP transport does once its buffer is in the kernel: the protocol is
            # done; the connection lingers to deliver what is in flight and the FIN.
            self._report_lost(None)
        self._arm_timer(conn.next_timer())

    def _send_failed(self, datagram: bytes, exc: OSError, now: float) -> None:
        """A full buffer drops the datagram (the timer resends it); one too big for the path
        the kernel knows lowers the connection's size and goes out fragmentable at once."""
        if exc.errno == errno.EMSGSIZE and self._port.dont_fragment:
            mtu = route_mtu(self.address)
            overhead = self.conn.mtu.limits.overhead
            self.conn.datagram_too_big(datagram, None if mtu is None else mtu - overhead, now)
            send_fragmenting(self._port.sock, datagram, self.address)
        elif not isinstance(exc, BlockingIOError):
            log.debug("uTP cannot send to %s: %s", self.address, exc)

    def _arm_timer(self, when: float | None) -> None:
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when is not None:
            self._timer = self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        now = self._loop.time()
        self.conn.handle_timer(now)
        self.pump(now)

    # ------------------------------------------------------------ events

    def _receive(self, data: bytes) -> None:
        if self._held or not self._reading or self._protocol is None:
            self._held.append(data)
            self.conn.hold(len(data))
            return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Give ``data`` to the protocol; what it does not take while paused is held."""
        view = memoryview(data)
        while view:
            protocol = self._protocol
            if protocol is None or not self._reading or self._lost_reported:
                rest = bytes(view)
                self._held.appendleft(rest)
                self.conn.hold(len(rest))
                return
            if self._buffered:
                buffered = cast(asyncio.BufferedProtocol, protocol)
                buffer = memoryview(buffered.get_buffer(len(view)))
                size = min(len(buffer), len(view))
                buffer[:size] = view[:size]
                view = view[size:]
                buffered.buffer_updated(size)
            else:
                cast(asyncio.Protocol, protocol).data_received(bytes(view))
                return

    def _deliver_held(self) -> None:
        while self._held and self._reading and self._protocol is not None:
            data = self._held.popleft()
            self.conn.release(len(data))
            self._feed(data)
        if self._eof_pending and not self._held:
            self._eof_pending = False
            self._peer_finished()
        self.schedule_pump()  # a reopened window is announced

    def attach(self, protocol: asyncio.BaseProtocol) -> None:
        """Give the connection its protocol (after the handshake) and deliver early bytes."""
        self.set_protocol(protocol)
        protocol.connection_made(self)
        if self._held or self._eof_pending:
            self._loop.call_soon(self._deliver_held)

    def _peer_finished(self) -> None:
        protocol = self._protocol
        if self._lost_reported:
            return
        if self._held or protocol is None:  # as TCP: the end comes after the last bytes
            self._eof_pending = True
            return
        keep_open = cast(asyncio.Protocol, protocol).eof_received()
        if not keep_open:
            self.close()

    def _closed(self, event: ConnectionClosed) -> None:
        if not self.connected.done():
            self.connected.set_exception(ConnectionRefusedError(f"uTP: {event.reason}"))
            self.connected.exception()
        self._closing = True
        error = ConnectionResetError(f"uTP: {event.reason}") if event.error else None
        self._report_lost(error)
        self._finish(error)
        if event.error:
            self._drop()
        else:  # a while longer, to answer a repeated FIN if our last ACK was lost
            self._arm_timer(None)
            if self._linger is not None:
                self._linger.cancel()
            self._linger = self._loop.call_later(CLOSED_LINGER, self._drop)

    def _report_lost(self, error: Exception | None) -> None:
        if self._lost_reported:
            return
        self._lost_reported = True
        protocol = self._protocol
        if protocol is not None:
            self._loop.call_soon(protocol.connection_lost, error)
        if self.conn.state is not ConnectionState.CLOSED:
            self._linger = self._loop.call_later(LINGER, self._drop)

    def _finish(self, error: Exception | None) -> None:
        if self.finished.done():
            return
        if error is None:
            self.finished.set_result(None)
        else:
            self.finished.set_exception(error)
            self.finished.exception()  # nobody need await it: no "never retrieved" warning

    def _drop(self) -> None:
        self._finish(ConnectionAbortedError("uTP: dropped before the close completed"))
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        self._forget(self)
