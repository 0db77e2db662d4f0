"""Per-address bookkeeping that keeps one client from taking the whole tracker.

Three pure pieces, used by :class:`~servent.proto.tracker_state.TrackerState`
and the tracker's HTTP listener:

* :func:`address_group` — what counts as "one client": an IPv4 address, or an
  IPv6 /64 (one host is routinely given a whole /64, so per-address limits on
  IPv6 addresses alone would bound nothing).
* :class:`CreatorLedger` — which group created which swarm, heaviest group
  first and, within a group, least recently announced first, so the swarm to
  evict when the table is full is found in O(1) amortised.
* :class:`ConnectionAdmission` — concurrent HTTP connections, per group and in
  total.
"""

from __future__ import annotations

import ipaddress
from collections import OrderedDict
from collections.abc import Iterator


def address_group(ip: str) -> str:
    """The key per-client limits are counted under (IPv6: its /64)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return ip


class CreatorLedger:
    """Swarms by the group that created them; ``heaviest()`` is O(1) amortised."""

    def __init__(self) -> None:
        self._swarms: dict[str, OrderedDict[bytes, None]] = {}
        self._by_count: dict[int, dict[str, None]] = {}
        self._max = 0

    def count(self, group: str) -> int:
        swarms = self._swarms.get(group)
        return len(swarms) if swarms else 0

    def add(self, group: str, info_hash: bytes) -> None:
        swarms = self._swarms.setdefault(group, OrderedDict())
        before = len(swarms)
        swarms[info_hash] = None
        self._move(group, before, len(swarms))

    def touch(self, group: str, info_hash: bytes) -> None:
        """``info_hash`` was just announced: it becomes its creator's newest."""
        swarms = self._swarms.get(group)
        if swarms is not None and info_hash in swarms:
            swarms.move_to_end(info_hash)

    def remove(self, group: str, info_hash: bytes) -> None:
        swarms = self._swarms.get(group)
        if swarms is None or info_hash not in swarms:
            return
        before = len(swarms)
        del swarms[info_hash]
        if not swarms:
            del self._swarms[group]
        self._move(group, before, before - 1)

    def heaviest(self) -> tuple[str, int] | None:
        """A group holding the most swarms (the earliest to reach that count)."""
        while self._max > 0 and not self._by_count.get(self._max):
            self._by_count.pop(self._max, None)
            self._max -= 1
        if self._max == 0:
            return None
        return next(iter(self._by_count[self._max])), self._max

    def oldest_first(self, group: str) -> Iterator[bytes]:
        """The group's swarms, least recently announced first."""
        return iter(self._swarms.get(group, ()))

    def _move(self, group: str, before: int, after: int) -> None:
        if before:
            bucket = self._by_count[before]
            del bucket[group]
            if not bucket:
                del self._by_count[before]
        if after:
            self._by_count.setdefault(after, {})[group] = None
            self._max = max(self._max, after)


class ConnectionAdmission:
    """Concurrent connections per group and in total; ``admit`` then ``release``."""

    def __init__(self, max_total: int, max_per_group: int) -> None:
        self.max_total = max_total
        self.max_per_group = max_per_group
        self._open: dict[str, int] = {}
        self._total = 0

    @property
    def total(self) -> int:
        return self._total

    def open_from(self, ip: str) -> int:
        return self._open.get(address_group(ip), 0)

    def admit(self, ip: str) -> bool:
        """Count one more connection from ``ip`` unless a limit is reached."""
        group = address_group(ip)
        held = self._open.get(group, 0)
        if self._total >= self.max_total or held >= self.max_per_group:
            return False
        self._open[group] = held + 1
        self._total += 1
        return True

    def release(self, ip: str) -> None:
        group = address_group(ip)
        held = self._open.get(group, 0)
        if held <= 0:
            return
        if held == 1:
            del self._open[group]
        else:
            self._open[group] = held - 1
        self._total -= 1
