"""One routing table per address family (BEP 32).

IPv4 and IPv6 contacts must not compete for the same k slots of a bucket: a
dual-stack node whose buckets fill with IPv4 contacts would have no IPv6
nodes to give an IPv6 requester (``nodes6``), and the reverse. BEP 32 keeps
one table per family; this class routes each call to the table of the
address family involved and merges the two where no family is given. The
IPv6 table is created with its first IPv6 contact, so an IPv4-only node (and
each of 100,000 simulated ones) pays nothing for it.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterable, Iterator

from servent.codec.compact import Address
from servent.proto.dht.config import DhtConfig
from servent.proto.dht.routing import Bucket, NodeEntry, RoutingTable


def _is_ipv6(ip: str) -> bool:
    return ":" in ip


class FamilyRoutingTables:
    """The IPv4 table and (once needed) the IPv6 table of one node."""

    __slots__ = ("_config", "_created", "own_id", "v4", "v6")

    def __init__(self, own_id: bytes, config: DhtConfig, now: float) -> None:
        self.own_id = own_id
        self._config = config
        self._created = now
        self.v4 = RoutingTable(own_id, config, now)
        self.v6: RoutingTable | None = None

    def _table(self, ip: str) -> RoutingTable:
        if not _is_ipv6(ip):
            return self.v4
        if self.v6 is None:
            self.v6 = RoutingTable(self.own_id, self._config, self._created)
        return self.v6

    def tables(self) -> list[RoutingTable]:
        return [self.v4] if self.v6 is None else [self.v4, self.v6]

    # -- queries ---------------------------------------------------------

    def __len__(self) -> int:
        return len(self.v4) + (len(self.v6) if self.v6 is not None else 0)

    @property
    def buckets(self) -> list[Bucket]:
        """Every bucket of both tables (for statistics)."""
        return [bucket for table in self.tables() for bucket in table.buckets]

    def find(self, node_id: bytes, ip: str | None = None) -> NodeEntry | None:
        """The entry of ``node_id`` in ``ip``'s family table, or in either without ``ip``."""
        if ip is not None:
            table = self.v6 if _is_ipv6(ip) else self.v4
            return table.find(node_id) if table is not None else None
        for table in self.tables():
            entry = table.find(node_id)
            if entry is not None:
                return entry
        return None

    def would_accept(self, node_id: bytes, ip: str) -> bool:
        return self._table(ip).would_accept(node_id, ip)

    def is_good(self, entry: NodeEntry, now: float) -> bool:
        return self.v4.is_good(entry, now)

    def closest(self, target: bytes, count: int, *, ipv6: bool | None = None) -> list[NodeEntry]:
        """The ``count`` closest non-bad contacts of one family, or of both merged."""
        if ipv6 is True:
            return self.v6.closest(target, count) if self.v6 is not None else []
        if ipv6 is False or self.v6 is None:
            return self.v4.closest(target, count)
        key = int.from_bytes(target, "big")
        return heapq.nsmallest(
            count,
            self.v4.closest(target, count) + self.v6.closest(target, count),
            key=lambda entry: int.from_bytes(entry.node_id, "big") ^ key,
        )

    def all_nodes(self) -> Iterator[NodeEntry]:
        for table in self.tables():
            yield from table.all_nodes()

    def export_nodes(self) -> list[tuple[bytes, Address]]:
        """Every contact, good ones first, the two families interleaved (a capped save
        keeps some of each)."""
        exported = [table.export_nodes() for table in self.tables()]
        if len(exported) == 1:
            return exported[0]
        v4, v6 = exported
        merged: list[tuple[bytes, Address]] = []
        for index in range(max(len(v4), len(v6))):
            merged.extend(family[index] for family in (v4, v6) if index < len(family))
        return merged

    def import_nodes(self, nodes: Iterable[tuple[bytes, Address]], now: float) -> int:
        added = 0
        for node_id, addr in nodes:
            added += self._table(addr[0]).import_nodes([(node_id, addr)], now)
        return added

    def refresh_target(self, now: float, rng: random.Random) -> bytes | None:
        """A random ID in one bucket untouched for ``bucket_refresh``, marked refreshed."""
        for table in self.tables():
            index = table.stale_bucket(now)
            if index is not None:
                table.buckets[index].last_changed = now
                return table.random_id_in_bucket(index, rng)
        return None

    def questionable(self, now: float, count: int = 1) -> list[NodeEntry]:
        """Up to ``count`` non-good contacts of either family, least recently seen first."""
        found = [entry for table in self.tables() for entry in table.questionable(now, count)]
        return heapq.nsmallest(count, found, key=lambda entry: (entry.last_seen, entry.failures))

    # -- updates ---------------------------------------------------------

    def heard_from(
        self,
        node_id: bytes,
        addr: Address,
        now: float,
        *,
        responded: bool,
        verified: bool,
        rtt: float = 0.0,
    ) -> NodeEntry | None:
        return self._table(addr[0]).heard_from(
            node_id, addr, now, responded=responded, verified=verified, rtt=rtt
        )

    def failed(self, node_id: bytes, addr: Address) -> None:
        table = self.v6 if _is_ipv6(addr[0]) else self.v4
        if table is not None:
            table.failed(node_id, addr)
