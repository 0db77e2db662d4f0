"""One uTP connection (BEP 29) as a sans-IO state machine.

The driver feeds datagrams with ``receive_datagram(data, now)`` (or decoded
packets with ``receive_packet``), queues bytes with ``send(data)``, collects
``datagrams_to_send(now)``, sleeps until ``next_timer()`` and then calls
``handle_timer(now)``. Events come out of ``next_event()``. Time is always
an argument (seconds, any monotonic origin); timestamps on the wire are its
low 32 bits of microseconds.
"""

from __future__ import annotations

from collections import deque

from servent.errors import UtpError
from servent.proto.utp.events import (
    Connected,
    ConnectionClosed,
    DataReceived,
    PeerFinished,
    UtpEvent,
)
from servent.proto.utp.ledbat import Ledbat
from servent.proto.utp.mtu import PathMtu, datagram_limits
from servent.proto.utp.outgoing import (
    OutgoingPacket,
    micros,
    payload_size_for,
    reply_micro,
    seq_after,
)
from servent.proto.utp.packet import (
    HEADER_SIZE,
    Packet,
    PacketType,
    decode_packet,
    encode_packet,
    sack_bitmask,
)
from servent.proto.utp.reassembly import Reassembly
from servent.proto.utp.recovery import Recovery
from servent.proto.utp.rtt import RttEstimator
from servent.proto.utp.statistics import UtpStatistics, statistics_of
from servent.proto.utp.tunables import (
    DUPLICATE_ACK_LIMIT,
    MASK,
    MAX_PACKETS_IN_FLIGHT,
    RECEIVE_BUFFER,
    ConnectionState,
)

__all__ = ["ConnectionState", "UtpConnection", "payload_size_for"]


class UtpConnection(Recovery):
    """Both directions of one connection; see the module docstring for the driver contract."""

    def __init__(
        self,
        *,
        recv_id: int,
        send_id: int,
        seq_nr: int,
        now: float,
        mtu: PathMtu | None = None,
        receive_buffer: int = RECEIVE_BUFFER,
    ) -> None:
        self.recv_id = recv_id & MASK
        self.send_id = send_id & MASK
        # Without a path MTU search (no DF bit): a fixed 1,400-byte datagram.
        self.mtu = mtu or PathMtu(datagram_limits(False), now, enabled=False)
        self.payload_size = self._proven_payload = 0
        self.receive_buffer = receive_buffer
        self.state = ConnectionState.SYN_SENT
        self.seq_nr = seq_nr & MASK  # next sequence number to use
        self.acked_seq = (seq_nr - 1) & MASK  # last of ours acknowledged in order
        self.ledbat = Ledbat(self.mtu.size - HEADER_SIZE)
        self._resize()
        self.rtt = RttEstimator()
        self.peer_window = RECEIVE_BUFFER
        self.bytes_in_flight = 0
        self.unacked_bytes = 0
        self.held_bytes = 0
        self.packets_sent = 0
        self.packets_resent = 0
        self.packets_dropped = 0
        self._outstanding: dict[int, OutgoingPacket] = {}
        self._send_queue = bytearray()
        self._fragmentable: list[bytes] = []  # datagrams to send with fragmentation allowed
        self._fin_queued = False
        self._fin_seq: int | None = None
        self._incoming = Reassembly(self._deliver, MAX_PACKETS_IN_FLIGHT)
        self._ack_needed = False
        self._reset_pending = False
        self._reply_micro = 0
        self._duplicate_acks = 0
        self._loss_seq = self.acked_seq
        self._timeouts = 0
        self._timeout_at: float | None = None
        self._probe = False
        self._last_received = now
        self._last_sent = now
        self._window_was_closed = False
        # A responder sends no DATA before the initiator shows it got our SYN-ACK
        # (its ack_nr starts from that packet's seq_nr).
        self._confirmed = True
        self._events: deque[UtpEvent] = deque()

    # ------------------------------------------------------------ construction

    @classmethod
    def connect(
        cls, recv_id: int, seq_nr: int, now: float, mtu: PathMtu | None = None
    ) -> UtpConnection:
        """The initiator: a SYN goes out with the first ``datagrams_to_send``."""
        conn = cls(recv_id=recv_id, send_id=recv_id + 1, seq_nr=seq_nr, now=now, mtu=mtu)
        conn._outstanding[conn.seq_nr] = OutgoingPacket(conn.seq_nr, PacketType.SYN, b"")
        conn.seq_nr = (conn.seq_nr + 1) & MASK
        return conn

    @classmethod
    def accept(
        cls, syn: Packet, seq_nr: int, now: float, mtu: PathMtu | None = None
    ) -> UtpConnection:
        """The responder to ``syn``: connected at once, a STATE acknowledges the SYN."""
        conn = cls(
            recv_id=syn.connection_id + 1,
            send_id=syn.connection_id,
            seq_nr=seq_nr,
            now=now,
            mtu=mtu,
        )
        conn.state = ConnectionState.CONNECTED
        conn._incoming.ack_nr = syn.seq_nr
        conn.peer_window = syn.wnd_size
        conn._reply_micro = reply_micro(syn, now)
        conn._ack_needed = True
        conn._confirmed = False
        conn._events.append(Connected())
        return conn

    # ------------------------------------------------------------ application side

    def send(self, data: bytes | bytearray | memoryview) -> None:
        """Queue bytes; they leave with the next ``datagrams_to_send``."""
        if self._fin_queued or self.state is ConnectionState.CLOSED:
            raise UtpError("uTP connection is closing")
        self._send_queue += data

    def close(self) -> None:
        """Send FIN after everything queued (our half of the stream ends)."""
        self._fin_queued = True

    def abort(self, reason: str = "aborted") -> None:
        """Send RESET and close at once."""
        if self.state is not ConnectionState.CLOSED:
            self._reset_pending = self.state is ConnectionState.CONNECTED
            self._close(reason, error=True)

    def hold(self, nbytes: int) -> None:
        """The application holds ``nbytes`` delivered but unread: they count against our window."""
        self.held_bytes += nbytes

    def release(self, nbytes: int) -> None:
        """Held bytes were read; a window that reopens is announced."""
        self.held_bytes = max(0, self.held_bytes - nbytes)
        if self._window_was_closed and self.receive_window() >= self.payload_size:
            self._window_was_closed = False
            self._ack_needed = True

    @property
    def ack_nr(self) -> int:
        """The last packet of theirs received in order."""
        return self._incoming.ack_nr

    def _deliver(self, payload: bytes) -> None:
        self._events.append(DataReceived(payload))

    def next_event(self) -> UtpEvent | None:
        return self._events.popleft() if self._events else None

    @property
    def send_buffer_size(self) -> int:
        """Bytes queued or sent and not yet acknowledged (for write flow control)."""
        return len(self._send_queue) + self.unacked_bytes

    @property
    def queued_bytes(self) -> int:
        return len(self._send_queue)

    def receive_window(self) -> int:
        return max(0, self.receive_buffer - self._incoming.held_bytes - self.held_bytes)

    def statistics(self) -> UtpStatistics:
        return statistics_of(self)

    # ------------------------------------------------------------ input

    def receive_datagram(self, data: bytes, now: float) -> None:
        """Decode and handle one datagram; malformed ones are counted and dropped."""
        try:
            packet = decode_packet(data)
        except UtpError:
            self.packets_dropped += 1
            return
        if packet.connection_id != self.recv_id and packet.type is not PacketType.SYN:
            self.packets_dropped += 1
            return
        self.receive_packet(packet, now)

    def receive_packet(self, packet: Packet, now: float) -> None:
        if self.state is ConnectionState.CLOSED:
            if packet.type in (PacketType.FIN, PacketType.DATA) and self._incoming.finished:
                self._ack_needed = True  # our last ACK was lost: the FIN (or DATA) repeats
            return
        kind = packet.type
        if kind is PacketType.SYN:
            if packet.connection_id == self.send_id == (self.recv_id - 1) & MASK:  # responder
                self._ack_needed = True  # our STATE was lost: acknowledge the SYN again
            else:
                self.packets_dropped += 1
            return
        if not self._valid_ack(packet.ack_nr):
            self.packets_dropped += 1
            return
        if kind is PacketType.RESET:
            self._close("reset by peer", error=True)
            return
        if self.state is ConnectionState.SYN_SENT:
            if packet.ack_nr != (self.seq_nr - 1) & MASK:
                self.packets_dropped += 1
                return
            self.state = ConnectionState.CONNECTED
            self._incoming.ack_nr = (packet.seq_nr - 1) & MASK
            self._ack_needed = True  # confirms the connection to the responder
            self._events.append(Connected())
        self._confirmed = True
        self._last_received = now
        self._reply_micro = reply_micro(packet, now)
        self.peer_window = packet.wnd_size
        self._process_acks(packet, now)
        if kind is PacketType.DATA:
            self._ack_needed = True
            self._incoming.receive(packet.seq_nr, packet.payload, self.receive_window())
        elif kind is PacketType.FIN:
            self._ack_needed = True
            self._incoming.receive_fin(packet.seq_nr)
        self._check_finished()

    def _valid_ack(self, ack_nr: int) -> bool:
        """Not ahead of what we sent; not absurdly far behind what was acknowledged."""
        ahead = (self.seq_nr - 1 - self.acked_seq) & MASK
        distance = (ack_nr - self.acked_seq) & MASK
        return distance <= ahead or distance >= MASK + 1 - MAX_PACKETS_IN_FLIGHT

    def _process_acks(self, packet: Packet, now: float) -> None:
        flight_before = self.bytes_in_flight
        outstanding_before = len(self._outstanding)
        acked = 0
        min_rtt: float | None = None
        if seq_after(packet.ack_nr, self.acked_seq):
            seq = self.acked_seq
            while seq != packet.ack_nr:
                seq = (seq + 1) & MASK
                done = self._outstanding.pop(seq, None)
                if done is not None:
                    acked += self._acknowledged(done, now)
                    if done.transmissions == 1:
                        rtt = now - done.first_sent
                        min_rtt = rtt if min_rtt is None else min(min_rtt, rtt)
            self.acked_seq = packet.ack_nr
            self._duplicate_acks = 0
        elif (
            packet.ack_nr == self.acked_seq
            and packet.type is PacketType.STATE
            and self._outstanding
        ):
            self._duplicate_acks += 1
        if packet.sack:
            acked += self._process_sack(packet.ack_nr, packet.sack, now)
        if self._duplicate_acks >= DUPLICATE_ACK_LIMIT:
            self._declare_lost((self.acked_seq + 1) & MASK, now)
        if min_rtt is not None:
            self.rtt.sample(min_rtt)
        if packet.timestamp_difference_us and (acked or flight_before):
            self.ledbat.on_delay_sample(packet.timestamp_difference_us, now)
        if acked:
            rtt_us = None if min_rtt is None else int(min_rtt * 1e6)
            self.ledbat.on_ack(acked, flight_before, rtt_us)
        if len(self._outstanding) < outstanding_before:  # progress (a SYN or FIN counts too)
            self._timeouts = 0
            self._timeout_at = now + self.rtt.rto if self._outstanding else None

    def _acknowledged(self, done: OutgoingPacket, now: float) -> int:
        """Forget an acknowledged packet; return its payload size."""
        size = len(done.payload)
        self.unacked_bytes -= size
        if size > self._proven_payload and not done.fragmentable:  # it fit the path
            self.mtu.acked(size + HEADER_SIZE, now)
            self._resize()
        if not done.need_resend:
            self.bytes_in_flight -= size
        return size

    def _process_sack(self, ack_nr: int, mask: bytes, now: float) -> int:
        acked = received_after = 0
        base = (ack_nr + 2) & MASK
        # Only bits for packets we sent count: a hostile 1,024-bit mask costs no more.
        sent = (self.seq_nr - base) & MASK if seq_after(self.seq_nr, base) else 0
        for index in range(min(len(mask) * 8, sent) - 1, -1, -1):
            seq = (base + index) & MASK
            if mask[index >> 3] & (1 << (index & 7)):
                received_after += 1
                done = self._outstanding.pop(seq, None)
                if done is not None:
                    acked += self._acknowledged(done, now)
            elif received_after >= DUPLICATE_ACK_LIMIT and seq in self._outstanding:
                self._declare_lost(seq, now)
        if received_after >= DUPLICATE_ACK_LIMIT:
            self._declare_lost((ack_nr + 1) & MASK, now)
        return acked

    def _declare_lost(self, seq: int, now: float) -> None:
        """Resend ``seq`` once; halve the window once per window of packets, unless the
        packet was lost to the path MTU (a probe, or larger than the current size)."""
        packet = self._outstanding.get(seq)
        if packet is None or packet.fast_resent or packet.need_resend:
            return
        packet.fast_resent = True
        packet.need_resend = True
        self.bytes_in_flight -= len(packet.payload)
        if seq == self.mtu.probe_seq:
            self.mtu.probe_lost(now)
            self._resize()
        elif len(packet.payload) <= self.payload_size and seq_after(seq, self._loss_seq):
            self._loss_seq = (self.seq_nr - 1) & MASK
            self.ledbat.on_loss()

    def _check_finished(self) -> None:
        if self._incoming.check_finished():
            self._events.append(PeerFinished())
        if (
            self._incoming.finished
            and self._fin_seq is not None
            and self._fin_seq not in self._outstanding
        ):
            self._close("closed", error=False)

    # ------------------------------------------------------------ output

    def datagrams_to_send(self, now: float) -> list[bytes]:
        out: list[bytes] = []
        if self.state is ConnectionState.CLOSED:
            if self._reset_pending:
                self._reset_pending = False
                out.append(self._encode(PacketType.RESET, self.seq_nr, now))
            elif self._ack_needed:  # the last ACK, for the peer's FIN
                self._ack_needed = False
                out.append(self._encode(PacketType.STATE, self.seq_nr, now))
            return out
        for packet in self._outstanding.values():
            if packet.need_resend and self._may_send(len(packet.payload)):
                if len(packet.payload) > self.payload_size:  # would not fit: let it fragment
                    packet.fragmentable = True
                    self._fragmentable.append(self._transmit(packet, now))
                else:
                    out.append(self._transmit(packet, now))
        if self.state is ConnectionState.CONNECTED and self._confirmed:
            self._send_mtu_probe(out, now)
            self._packetize(out, now)
        if self._ack_needed and self.state is ConnectionState.CONNECTED:
            if not out:
                sack = sack_bitmask(self.ack_nr, self._incoming.held)
                out.append(self._encode(PacketType.STATE, self.seq_nr, now, sack=sack or None))
            self._ack_needed = False
        if out or self._fragmentable:
            self._last_sent = now
            if self._timeout_at is None and self._outstanding:
                self._timeout_at = now + self.rtt.rto
        if self.receive_window() < self.payload_size:
            self._window_was_closed = True
        return out

    def _send_mtu_probe(self, out: list[bytes], now: float) -> None:
        """One DATA packet of the probe size, when the window holds three and data follows."""
        probe = self.mtu.next_probe(now)
        payload = probe - HEADER_SIZE
        if (
            not probe
            or len(self._send_queue) <= payload + self.payload_size
            or self.ledbat.window < 3 * probe
            or len(self._outstanding) >= MAX_PACKETS_IN_FLIGHT
            or not self._may_send(payload)
        ):
            return
        self.mtu.probe_sent(self.seq_nr, probe)
        out.append(self._transmit(self._new_data_packet(payload), now))

    def _new_data_packet(self, size: int) -> OutgoingPacket:
        queue = self._send_queue
        packet = OutgoingPacket(self.seq_nr, PacketType.DATA, bytes(queue[:size]))
        del queue[:size]
        self.unacked_bytes += size
        self.seq_nr = (self.seq_nr + 1) & MASK
        self._outstanding[packet.seq] = packet
        return packet

    def _packetize(self, out: list[bytes], now: float) -> None:
        queue = self._send_queue
        size = self.payload_size
        while queue and len(self._outstanding) < MAX_PACKETS_IN_FLIGHT:
            chunk_size = min(size, len(queue))
            if not self._may_send(chunk_size):
                break
            out.append(self._transmit(self._new_data_packet(chunk_size), now))
        if self._fin_queued and self._fin_seq is None and not queue:
            fin = OutgoingPacket(self.seq_nr, PacketType.FIN, b"")
            self._fin_seq = fin.seq
            self.seq_nr = (self.seq_nr + 1) & MASK
            self._outstanding[fin.seq] = fin
            out.append(self._transmit(fin, now))

    def _may_send(self, size: int) -> bool:
        if size == 0:
            return True
        limit = min(self.ledbat.window, self.peer_window)
        if self.bytes_in_flight + size <= limit:
            return True
        if self._probe and self.bytes_in_flight == 0:
            self._probe = False  # one packet past a closed window, once per timeout
            return True
        return False

    def _transmit(self, packet: OutgoingPacket, now: float) -> bytes:
        if packet.transmissions == 0:
            packet.first_sent = now
        else:
            self.packets_resent += 1
        packet.transmissions += 1
        packet.need_resend = False
        self.bytes_in_flight += len(packet.payload)
        self.packets_sent += 1
        self._ack_needed = False  # every packet carries our ack_nr
        if packet.kind is PacketType.SYN:
            return encode_packet(
                PacketType.SYN,
                self.recv_id,
                timestamp_us=micros(now),
                timestamp_difference_us=0,
                wnd_size=self.receive_window(),
                seq_nr=packet.seq,
                ack_nr=0,
            )
        return self._encode(packet.kind, packet.seq, now, payload=packet.payload)

    def _encode(
        self,
        kind: PacketType,
        seq: int,
        now: float,
        *,
        sack: bytes | None = None,
        payload: bytes = b"",
    ) -> bytes:
        return encode_packet(
            kind,
            self.send_id,
            timestamp_us=micros(now),
            timestamp_difference_us=self._reply_micro,
            wnd_size=self.receive_window(),
            seq_nr=seq,
            ack_nr=self.ack_nr,
            sack=sack,
            payload=payload,
        )

    def _close(self, reason: str, *, error: bool) -> None:
        self.state = ConnectionState.CLOSED
        self._timeout_at = None
        self._outstanding.clear()
        self.unacked_bytes = self.bytes_in_flight = 0
        self._ack_needed = self._ack_needed and not error  # a clean close may still ACK a FIN
        self._send_queue.clear()
        self._incoming.clear()
        self._events.append(ConnectionClosed(reason, error))
