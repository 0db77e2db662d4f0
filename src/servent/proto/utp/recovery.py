"""What a uTP connection does about packets that do not arrive: timers and the path MTU.

:class:`Recovery` is a base of :class:`~servent.proto.utp.connection.UtpConnection`:
the retransmission timeout (and what it means for the path MTU search), the
keep-alive and zero-window probe timers, and the driver's side of the search
(``EMSGSIZE``, datagrams to send with fragmentation allowed). Split out to keep
each module short; the state it reads belongs to the connection.
"""

from __future__ import annotations

from servent.proto.utp.ledbat import Ledbat
from servent.proto.utp.mtu import PathMtu
from servent.proto.utp.outgoing import OutgoingPacket
from servent.proto.utp.packet import HEADER_SIZE
from servent.proto.utp.rtt import RttEstimator
from servent.proto.utp.tunables import (
    IDLE_TIMEOUT,
    KEEPALIVE_INTERVAL,
    MASK,
    MAX_SYN_TIMEOUTS,
    MAX_TIMEOUTS,
    ConnectionState,
)

__all__ = ["Recovery"]


class Recovery:
    """Timers and path MTU reactions; the attributes are the connection's."""

    state: ConnectionState
    mtu: PathMtu
    ledbat: Ledbat
    rtt: RttEstimator
    seq_nr: int
    payload_size: int
    bytes_in_flight: int
    _proven_payload: int
    _outstanding: dict[int, OutgoingPacket]
    _fragmentable: list[bytes]
    _send_queue: bytearray
    _last_received: float
    _last_sent: float
    _timeout_at: float | None
    _timeouts: int
    _loss_seq: int
    _confirmed: bool
    _probe: bool
    _ack_needed: bool

    def _close(self, reason: str, *, error: bool) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ path MTU

    def _resize(self) -> None:
        """Follow the path MTU search: packet size, proven size, LEDBAT's segment size."""
        self.payload_size = self.mtu.size - HEADER_SIZE
        self._proven_payload = self.mtu.floor - HEADER_SIZE
        self.ledbat.set_mss(self.payload_size)

    def datagram_too_big(self, datagram: bytes, path_limit: int | None, now: float) -> None:
        """The kernel refused ``datagram`` (EMSGSIZE); the driver sends it again fragmentable."""
        if len(datagram) >= HEADER_SIZE:
            packet = self._outstanding.get(int.from_bytes(datagram[16:18], "big"))
            if packet is not None:
                packet.fragmentable = True  # its ACK proves nothing about the path
        self.mtu.too_big(len(datagram), path_limit, now)
        self._resize()

    def take_fragmentable(self) -> list[bytes]:
        """Datagrams larger than the current size: send them with fragmentation allowed."""
        out, self._fragmentable = self._fragmentable, []
        return out

    # ------------------------------------------------------------ timers

    def next_timer(self) -> float | None:
        if self.state is ConnectionState.CLOSED:
            return None
        deadline = self._last_received + IDLE_TIMEOUT
        if self.state is ConnectionState.CONNECTED:
            deadline = min(deadline, self._last_sent + KEEPALIVE_INTERVAL)
        if self._timeout_at is not None:
            deadline = min(deadline, self._timeout_at)
        elif self._probing_possible():
            deadline = min(deadline, self._last_sent + self.rtt.rto)  # zero-window probe
        return deadline

    def handle_timer(self, now: float) -> None:
        if self.state is ConnectionState.CLOSED:
            return
        if now >= self._last_received + IDLE_TIMEOUT:
            self._close("timed out (nothing heard)", error=True)
            return
        if self._timeout_at is not None and now >= self._timeout_at:
            self._expire(now)
        if self._timeout_at is None and self._probing_possible():
            self._probe = now >= self._last_sent + self.rtt.rto
        if self.state is ConnectionState.CONNECTED and now >= self._last_sent + KEEPALIVE_INTERVAL:
            self._ack_needed = True

    def _probing_possible(self) -> bool:
        """Data waits, nothing is in flight, and we may send: only a closed window stops us."""
        return (
            bool(self._send_queue)
            and self.bytes_in_flight == 0
            and self._confirmed
            and self.state is ConnectionState.CONNECTED
        )

    def _expire(self, now: float) -> None:
        if not self._outstanding:
            self._timeout_at = None
            return
        self._timeouts += 1
        limit = MAX_SYN_TIMEOUTS if self.state is ConnectionState.SYN_SENT else MAX_TIMEOUTS
        if self._timeouts > limit:
            self._close("timed out", error=True)
            return
        self.rtt.back_off()
        if not self._timed_out_by_mtu(next(iter(self._outstanding.values())), now):
            self.ledbat.on_timeout()
        self._loss_seq = (self.seq_nr - 1) & MASK
        for packet in self._outstanding.values():
            if not packet.need_resend:
                packet.need_resend = True
                self.bytes_in_flight -= len(packet.payload)
        self._probe = True
        self._timeout_at = now + self.rtt.rto

    def _timed_out_by_mtu(self, oldest: OutgoingPacket, now: float) -> bool:
        """Tell the MTU search; True if the timeout is explained by the path MTU alone."""
        size = len(oldest.payload)
        if oldest.seq == self.mtu.probe_seq:
            self.mtu.probe_lost(now)
            self._resize()
            return len(self._outstanding) == 1  # the probe alone was in flight
        explained = size > self.payload_size  # sent before the size fell: resent fragmentable
        self.mtu.timed_out(size + HEADER_SIZE, oldest.transmissions, now)
        self._resize()
        return explained
