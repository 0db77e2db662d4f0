"""When to ask a relay for a BEP 55 rendezvous with an address our dials failed to reach.

Without I/O (the caller passes ``now``).  The first rendezvous goes out as
soon as a direct dial failed (libtorrent asks on a failed connect too): a
TCP punch and a punch through a NAT that dropped our dial work at once.  A
failed uTP dial may leave an unanswered entry in the other side's NAT that a
Linux NAT keeps 30 s and that gives the other side's answer a random port
(decision 0042), so a retry waits until :data:`STRAY_EXPIRY` passed since our
last dial to the address; later retries come :data:`RENDEZVOUS_INTERVAL`
apart, and after :data:`MAX_ASKS` none (the direct dials take over again).
While a punch is pending, the caller holds back direct dials to the address
(:meth:`RendezvousSchedule.hold_until`): they would only refresh that entry.
"""

from __future__ import annotations

from servent.codec.compact import Address

__all__ = ["MAX_ASKS", "RENDEZVOUS_INTERVAL", "STRAY_EXPIRY", "RendezvousSchedule"]

#: Seconds after our last dial to an address before a retry (a Linux NAT forgets an
#: unanswered UDP flow after 30 s).
STRAY_EXPIRY = 35.0
#: Retries after the second come at most this often per address.
RENDEZVOUS_INTERVAL = 60.0
#: Rendezvous asked per address at most (then the direct dials' back-off decides).
MAX_ASKS = 4
#: Addresses tracked at most (beyond, the record starts afresh: a bounded table).
MAX_TRACKED = 1000


class RendezvousSchedule:
    """Per address: when we last dialled it, when and how often we asked for it."""

    def __init__(self) -> None:
        self._last_dial: dict[Address, float] = {}
        self._asked: dict[Address, tuple[float, int]] = {}

    def dialling(self, address: Address, now: float) -> None:
        """A dial to ``address`` (direct or a punch's) is in flight at ``now``."""
        if len(self._last_dial) >= MAX_TRACKED:
            self._last_dial.clear()
        self._last_dial[address] = now

    def due(self, address: Address, now: float) -> bool:
        """Whether to ask now for a rendezvous with ``address``, whose dials failed."""
        record = self._asked.get(address)
        if record is None:
            return True
        last_ask, count = record
        if count >= MAX_ASKS:
            return False
        gap = STRAY_EXPIRY if count == 1 else RENDEZVOUS_INTERVAL
        quiet = now - self._last_dial.get(address, last_ask)
        return quiet >= STRAY_EXPIRY and now - last_ask >= gap

    def asked(self, address: Address, now: float) -> None:
        """A rendezvous with ``address`` went out at ``now``."""
        if len(self._asked) >= MAX_TRACKED:
            self._asked.clear()
        record = self._asked.get(address)
        self._asked[address] = (now, 1 if record is None else record[1] + 1)

    def hold_until(self, address: Address, now: float) -> float | None:
        """Until when direct dials to ``address`` wait (a punch is pending), or None."""
        record = self._asked.get(address)
        if record is None or record[1] >= MAX_ASKS:
            return None
        last_ask, count = record
        gap = STRAY_EXPIRY if count == 1 else RENDEZVOUS_INTERVAL
        return max(last_ask + gap, self._last_dial.get(address, last_ask) + STRAY_EXPIRY) + 1.0
