"""Learning our external IP from the ``ip`` key of answers (BEP 42 / BEP 5).

Every answer may carry the address the responder saw us at. One responder
could lie, and a NAT can change our address at any time, so the voter keeps
the latest report of each of the most recent ``window`` distinct voters
(identified by IP, or by IP and port on loopback test networks) and
declares a new address only when at least ``min_votes`` of them agree and
it has more votes than the address believed so far.  Bounded memory; no
clock (old voters simply fall out of the window).
"""

from __future__ import annotations

from collections import OrderedDict

from servent.codec.compact import Address

DEFAULT_WINDOW = 16
DEFAULT_MIN_VOTES = 3


class ExternalIpVoter:
    """Tallies reported external IPs; :meth:`vote` says when the winner changes."""

    __slots__ = ("_by_voter", "_per_ip", "current", "min_votes", "per_port", "window")

    def __init__(
        self,
        *,
        window: int = DEFAULT_WINDOW,
        min_votes: int = DEFAULT_MIN_VOTES,
        per_port: bool = False,
    ) -> None:
        if window < 1 or not 1 <= min_votes <= window:
            raise ValueError("need window >= 1 and 1 <= min_votes <= window")
        self.window = window
        self.min_votes = min_votes
        self.per_port = per_port
        self.current: str | None = None
        self._by_voter: OrderedDict[Address | str, str] = OrderedDict()
        self._per_ip: dict[str, int] = {}

    def vote(self, voter: Address, reported_ip: str) -> str | None:
        """Count ``voter``'s report; the new external IP when it just changed, else None."""
        key: Address | str = voter if self.per_port else voter[0]
        by_voter = self._by_voter
        previous = by_voter.pop(key, None)
        if previous is not None:
            self._drop(previous)
        by_voter[key] = reported_ip
        self._per_ip[reported_ip] = self._per_ip.get(reported_ip, 0) + 1
        if len(by_voter) > self.window:
            _, oldest = by_voter.popitem(last=False)
            self._drop(oldest)
        if reported_ip == self.current:
            return None
        votes = self._per_ip[reported_ip]
        if votes >= self.min_votes and votes > self._per_ip.get(self.current or "", 0):
            self.current = reported_ip
            return reported_ip
        return None

    def __len__(self) -> int:
        return len(self._by_voter)

    def votes_for(self, ip: str) -> int:
        return self._per_ip.get(ip, 0)

    def _drop(self, ip: str) -> None:
        left = self._per_ip[ip] - 1
        if left:
            self._per_ip[ip] = left
        else:
            del self._per_ip[ip]


class ReflectedPorts:
    """The UDP port remote nodes saw our IPv4 address at (BEP 42 ``ip``), per voter IP.

    One socket seen at the same port by every voter means a NAT that keeps a
    mapping for all destinations ("cone", endpoint-independent mapping); a
    port that differs from voter to voter means a symmetric NAT, which hole
    punching cannot get through.  The newest ``window`` voters only.
    """

    __slots__ = ("_by_voter", "window")

    def __init__(self, window: int = 8) -> None:
        self.window = window
        self._by_voter: OrderedDict[str, int] = OrderedDict()

    def report(self, voter_ip: str, port: int) -> None:
        self._by_voter.pop(voter_ip, None)
        self._by_voter[voter_ip] = port
        if len(self._by_voter) > self.window:
            self._by_voter.popitem(last=False)

    def behaviour(self) -> str | None:
        """"cone", "symmetric", or None with fewer than two voters."""
        if len(self._by_voter) < 2:
            return None
        return "cone" if len(set(self._by_voter.values())) == 1 else "symmetric"
