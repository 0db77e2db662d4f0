"""TCP simultaneous open for a BEP 55 punch: who speaks first, and when to send SYNs.

Both ends of a punch dial each other from their listening port at once; when
the two SYNs cross, each end's socket connects and neither is the acceptor.
The peer wire's MSE handshake still needs one initiator, so both ends derive
the roles from what both know alike: their two public endpoints as the relay
named them (decision 0048).  No I/O and no clock here: times are arguments.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum

from servent.codec.compact import Address

__all__ = ["PunchRole", "PunchSchedule", "punch_role"]


class PunchRole(Enum):
    """What an end does on the punched connection."""

    INITIATOR = "initiator"
    """Speaks first: the MSE initiator and the BitTorrent dialler."""
    RESPONDER = "responder"
    """Waits and answers, as the listener answers an incoming connection."""


def punch_role(own: Address, peer: Address) -> PunchRole | None:
    """Our role given our public endpoint (the relay's ``yourip`` and our listening port)
    and the peer's (the relay's ``connect``): the lower endpoint initiates.

    Both ends compute the same answer from the same two endpoints; None when they
    cannot be compared (not addresses, different families, or one endpoint)."""
    try:
        ours, theirs = ipaddress.ip_address(own[0]), ipaddress.ip_address(peer[0])
    except ValueError:
        return None
    if ours.version != theirs.version:
        return None
    mine, other = (ours.packed, own[1]), (theirs.packed, peer[1])
    if mine == other:
        return None
    return PunchRole.INITIATOR if mine < other else PunchRole.RESPONDER


@dataclass(frozen=True, slots=True)
class PunchSchedule:
    """When to send a SYN during one punch, which lasts at most ``window`` seconds.

    One attempt is one socket: the kernel retransmits its SYN (after 1, 3, 7 s),
    which is what lets a SYN that a NAT dropped silently be answered once the
    other end's SYN opened that NAT.  An attempt that fails at once (a NAT
    answered with a reset) is retried after ``retry_gap``, at most ``attempts``
    times in all."""

    window: float = 12.0
    retry_gap: float = 1.0
    attempts: int = 4

    def __post_init__(self) -> None:
        if self.window <= 0 or self.retry_gap < 0 or self.attempts < 1:
            raise ValueError(f"a punch schedule needs a window and attempts: {self}")

    def deadline(self, started: float) -> float:
        """When the punch gives up, whatever the attempts."""
        return started + self.window

    def next_attempt(self, started: float, now: float, failed: int) -> float | None:
        """When to start the next attempt after ``failed`` failed ones; None: give up."""
        if failed >= self.attempts:
            return None
        at = started if failed == 0 else now + self.retry_gap
        return at if at < self.deadline(started) else None
