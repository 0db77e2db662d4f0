"""The receiving half of a uTP connection: in-order delivery, the reorder buffer, FIN."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Reassembly"]

MASK = 0xFFFF


class Reassembly:
    """Puts DATA packets back in order; ``ack_nr`` is the last packet received in order.

    Packets are held out of order only within ``max_packets`` of ``ack_nr`` and
    while the receive window has room; the FIN's sequence number ends the stream.
    """

    def __init__(self, deliver: Callable[[bytes], None], max_packets: int) -> None:
        self.ack_nr = 0
        self.held: dict[int, bytes] = {}
        self.held_bytes = 0
        self.eof_seq: int | None = None
        self.finished = False
        self.dropped = 0
        self._deliver = deliver
        self._max_packets = max_packets

    def receive(self, seq: int, payload: bytes, room: int) -> None:
        """Deliver ``payload`` if it is next (and whatever it unblocks), else hold it."""
        distance = (seq - self.ack_nr) & MASK
        if distance == 0 or distance >= 0x8000:
            return  # a duplicate: the ACK tells the sender again
        eof = self.eof_seq
        if (eof is not None and (eof - seq) & MASK >= 0x8000) or seq == eof:
            self.dropped += 1
            return
        if distance > 1:
            if distance > self._max_packets or len(payload) > room:
                self.dropped += 1
            elif seq not in self.held:
                self.held[seq] = payload
                self.held_bytes += len(payload)
            return
        if payload:
            self._deliver(payload)
        self.ack_nr = seq
        held = self.held
        while held:
            following = held.pop((self.ack_nr + 1) & MASK, None)
            if following is None:
                break
            self.held_bytes -= len(following)
            if following:
                self._deliver(following)
            self.ack_nr = (self.ack_nr + 1) & MASK

    def receive_fin(self, seq: int) -> None:
        if self.eof_seq is None:
            self.eof_seq = seq

    def check_finished(self) -> bool:
        """True once, when every packet before the FIN has arrived."""
        eof = self.eof_seq
        if eof is None or self.finished or (self.ack_nr + 1) & MASK != eof:
            return False
        self.ack_nr = eof
        self.finished = True
        self.clear()
        return True

    def clear(self) -> None:
        self.held.clear()
        self.held_bytes = 0
