"""The BEP 5 routing table: k-buckets split by range around our own ID.

Bucket ``i`` (except the last) holds nodes sharing exactly ``i`` leading bits
with our ID; the last bucket holds everything closer and is the only one that
splits. A node is *good* when it answered within ``node_good_for`` seconds,
*bad* after ``max_failures`` consecutive timeouts, *questionable* otherwise.
A full bucket keeps its nodes and parks newcomers in a small replacement
cache; a node is replaced only once it is bad, so one lost packet never
evicts a long-lived node. With ``restrict_ips`` an IP appears once in the
table and a /24 (IPv6: /64) once per bucket, which blunts Sybil floods.
"""

from __future__ import annotations

import heapq
import random
from bisect import bisect_left, insort
from collections.abc import Iterable

from servent.codec.compact import Address
from servent.proto.dht.config import DhtConfig
from servent.proto.dht.rtt import smoothed

ID_BITS = 160
NEVER = float("-inf")


class NodeEntry:
    """One contact. ``last_seen`` is ``NEVER`` until the node has answered us; ``rtt``
    is its smoothed round-trip time (0.0: not measured)."""

    __slots__ = ("addr", "failures", "last_seen", "node_id", "rtt", "verified")

    def __init__(self, node_id: bytes, addr: Address, last_seen: float, verified: bool) -> None:
        self.node_id = node_id
        self.addr = addr
        self.last_seen = last_seen
        self.failures = 0
        self.verified = verified
        self.rtt = 0.0

    def __repr__(self) -> str:
        return f"NodeEntry({self.node_id.hex()[:8]}, {self.addr}, fails={self.failures})"


class Bucket:
    """Up to k nodes, a replacement cache, and when it last changed (for refresh)."""

    __slots__ = ("last_changed", "nodes", "replacements")

    def __init__(self, now: float) -> None:
        self.nodes: list[NodeEntry] = []
        self.replacements: list[NodeEntry] = []
        self.last_changed = now


def ip_prefix(ip: str) -> str:
    """The /24 (IPv4) or /64 (IPv6) network of ``ip``, as a comparable string."""
    if ":" in ip:
        # Expand enough of the address to compare the first four groups.
        head, _, tail = ip.partition("::")
        groups = head.split(":") if head else []
        if len(groups) < 4:
            missing = 8 - len(groups) - (len(tail.split(":")) if tail else 0)
            groups += ["0"] * max(missing, 0) + (tail.split(":") if tail else [])
        return ":".join(g.lstrip("0") or "0" for g in groups[:4])
    return ip.rpartition(".")[0]


def _same_network(nodes: list[NodeEntry], ip: str) -> bool:
    """Whether a node in ``nodes`` shares the /24 (IPv6: /64) of ``ip``."""
    if ":" not in ip:
        head = ip[: ip.rfind(".") + 1]  # "1.2.3." — cheap, no parsing in the hot loop
        for entry in nodes:  # noqa: SIM110 - a plain loop is faster than any() here
            if entry.addr[0].startswith(head):
                return True
        return False
    prefix = ip_prefix(ip)
    return any(":" in entry.addr[0] and ip_prefix(entry.addr[0]) == prefix for entry in nodes)


class RoutingTable:
    """Buckets of contacts around ``own_id``; passive (the node decides whom to ping)."""

    __slots__ = ("_config", "_ips", "_own", "buckets", "own_id")

    def __init__(self, own_id: bytes, config: DhtConfig, now: float) -> None:
        self.own_id = own_id
        self._own = int.from_bytes(own_id, "big")
        self._config = config
        self.buckets: list[Bucket] = [Bucket(now)]
        # Sorted list rather than a set: a set of ~100 strings costs ~8 KiB, which is
        # most of a node's memory when 100,000 nodes are simulated in one process.
        self._ips: list[str] = []

    # -- queries ---------------------------------------------------------

    def __len__(self) -> int:
        return sum(len(bucket.nodes) for bucket in self.buckets)

    def bucket_index(self, node_key: int) -> int:
        shared = ID_BITS - (self._own ^ node_key).bit_length()
        last = len(self.buckets) - 1
        return shared if shared < last else last

    def find(self, node_id: bytes) -> NodeEntry | None:
        bucket = self.buckets[self.bucket_index(int.from_bytes(node_id, "big"))]
        for entry in bucket.nodes:
            if entry.node_id == node_id:
                return entry
        return None

    def would_accept(self, node_id: bytes, ip: str) -> bool:
        """Whether an unknown node could join without evicting anyone (worth a ping)."""
        if node_id == self.own_id or (self._config.restrict_ips and self._has_ip(ip)):
            return False
        index = self.bucket_index(int.from_bytes(node_id, "big"))
        if len(self.buckets[index].nodes) < self._config.k:
            return True
        return index == len(self.buckets) - 1 and len(self.buckets) < ID_BITS

    def is_good(self, entry: NodeEntry, now: float) -> bool:
        return (
            entry.failures == 0
            and entry.last_seen != NEVER
            and now - entry.last_seen < self._config.node_good_for
        )

    def closest(self, target: bytes, count: int, *, ipv6: bool | None = None) -> list[NodeEntry]:
        """The ``count`` non-bad nodes closest to ``target`` (optionally of one family).

        A contact that just failed to answer is probably gone: it gives way to
        farther ones that did not fail, as long as there are enough of them.
        """
        key = int.from_bytes(target, "big")
        buckets = self.buckets
        start = self.bucket_index(key)
        max_failures = self._config.max_failures
        found: list[NodeEntry] = []
        doubtful: list[NodeEntry] = []

        def take(bucket: Bucket) -> None:
            for entry in bucket.nodes:
                if entry.failures < max_failures and (
                    ipv6 is None or (":" in entry.addr[0]) == ipv6
                ):
                    (doubtful if entry.failures else found).append(entry)

        take(buckets[start])
        if len(found) < count:
            for index in range(start + 1, len(buckets)):
                take(buckets[index])
            index = start - 1
            while len(found) < count and index >= 0:
                take(buckets[index])
                index -= 1

        def distance(entry: NodeEntry) -> int:
            return int.from_bytes(entry.node_id, "big") ^ key

        found.sort(key=distance)
        if len(found) < count:
            found += sorted(doubtful, key=distance)[: count - len(found)]
            found.sort(key=distance)
        return found[:count]

    def all_nodes(self) -> Iterable[NodeEntry]:
        for bucket in self.buckets:
            yield from bucket.nodes

    def export_nodes(self) -> list[tuple[bytes, Address]]:
        """Every contact as ``(id, addr)``, good ones first, for saving across restarts."""
        entries = sorted(self.all_nodes(), key=lambda entry: (entry.failures, -entry.last_seen))
        return [(entry.node_id, entry.addr) for entry in entries]

    def import_nodes(self, nodes: Iterable[tuple[bytes, Address]], now: float) -> int:
        """Insert saved contacts as questionable (never answered this run); returns how many."""
        added = 0
        for node_id, addr in nodes:
            if len(node_id) != 20 or node_id == self.own_id:
                continue
            if (
                self.find(node_id) is None
                and self._insert(NodeEntry(node_id, addr, NEVER, True), now, want_ping=False)[0]
            ):
                added += 1
        return added

    def stale_bucket(self, now: float) -> int | None:
        """Index of one bucket untouched for ``bucket_refresh`` seconds, if any."""
        limit = now - self._config.bucket_refresh
        for index, bucket in enumerate(self.buckets):
            if bucket.last_changed < limit:
                return index
        return None

    def random_id_in_bucket(self, index: int, rng: random.Random) -> bytes:
        """A random ID inside bucket ``index``'s range (to refresh it)."""
        noise = rng.getrandbits(ID_BITS)
        if index < len(self.buckets) - 1:
            shift = ID_BITS - 1 - index  # same first ``index`` bits, then differ from us
            key = (((self._own >> shift) ^ 1) << shift) | (noise & ((1 << shift) - 1))
        else:
            shift = ID_BITS - index
            key = ((self._own >> shift) << shift) | (noise & ((1 << shift) - 1))
        return key.to_bytes(20, "big")

    def questionable(self, now: float, count: int = 1) -> list[NodeEntry]:
        """Up to ``count`` non-good nodes to ping during maintenance: never-answered
        ones first (imported, or not yet verified), then the least recently seen."""
        good_since = now - self._config.node_good_for
        doubtful = [
            entry
            for bucket in self.buckets
            for entry in bucket.nodes
            if entry.failures or entry.last_seen == NEVER or entry.last_seen <= good_since
        ]
        return heapq.nsmallest(count, doubtful, key=lambda entry: (entry.last_seen, entry.failures))

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
        """Record traffic from a node; returns a questionable node worth pinging, if any.

        Only nodes that answered one of our queries (``responded``) enter the
        table; a query from a known node only refreshes it.
        """
        if node_id == self.own_id:
            return None
        key = int.from_bytes(node_id, "big")
        bucket = self.buckets[self.bucket_index(key)]
        for entry in bucket.nodes:
            if entry.node_id == node_id:
                if entry.addr != addr:
                    return None  # keep the address we verified; a changed one must earn its place
                if responded:
                    entry.last_seen = now
                    entry.failures = 0
                    bucket.last_changed = now
                    if rtt > 0.0:
                        entry.rtt = smoothed(entry.rtt, rtt)
                elif entry.last_seen != NEVER:
                    entry.last_seen = now
                    bucket.last_changed = now
                return None
        if not responded:
            return None
        if self._config.enforce_node_id and not verified:
            return None
        new = NodeEntry(node_id, addr, now, verified)
        new.rtt = rtt
        _, to_ping = self._insert(new, now)
        return to_ping

    def _insert(
        self, new: NodeEntry, now: float, want_ping: bool = True
    ) -> tuple[bool, NodeEntry | None]:
        """Add ``new``; returns (added, a stale node to ping when it was parked instead)."""
        config = self._config
        ip = new.addr[0]
        if config.restrict_ips and self._has_ip(ip):
            return False, None
        while True:
            index = self.bucket_index(int.from_bytes(new.node_id, "big"))
            bucket = self.buckets[index]
            if config.restrict_ips and _same_network(bucket.nodes, ip):
                return False, None
            if len(bucket.nodes) < config.k:
                self._add(bucket, new, now)
                return True, None
            if index == len(self.buckets) - 1 and len(self.buckets) < ID_BITS:
                self._split(now)
                continue
            return self._full_bucket(bucket, new, now, want_ping)

    def _full_bucket(
        self, bucket: Bucket, new: NodeEntry, now: float, want_ping: bool
    ) -> tuple[bool, NodeEntry | None]:
        config = self._config
        victim: NodeEntry | None = None
        for entry in bucket.nodes:
            if entry.failures >= config.max_failures:
                victim = entry
                break
        if victim is None and config.prefer_verified_ids and new.verified:
            for entry in bucket.nodes:
                if not entry.verified and not self.is_good(entry, now):
                    victim = entry
                    break
        if victim is not None:
            self._remove(bucket, victim)
            self._add(bucket, new, now)
            return True, None
        replacements = bucket.replacements
        for index, entry in enumerate(replacements):
            if entry.node_id == new.node_id:
                del replacements[index]
                break
        replacements.append(new)
        if len(replacements) > config.replacement_cache:
            del replacements[0]
        if not want_ping:
            return False, None
        stalest: NodeEntry | None = None
        for entry in bucket.nodes:
            if not self.is_good(entry, now) and (
                stalest is None or entry.last_seen < stalest.last_seen
            ):
                stalest = entry
        return False, stalest

    def _add(self, bucket: Bucket, entry: NodeEntry, now: float) -> None:
        bucket.nodes.append(entry)
        bucket.last_changed = now
        if self._config.restrict_ips:
            insort(self._ips, entry.addr[0])

    def _has_ip(self, ip: str) -> bool:
        ips = self._ips
        index = bisect_left(ips, ip)
        return index < len(ips) and ips[index] == ip

    def _remove(self, bucket: Bucket, entry: NodeEntry) -> None:
        bucket.nodes.remove(entry)
        if self._config.restrict_ips:
            ips = self._ips
            index = bisect_left(ips, entry.addr[0])
            if index < len(ips) and ips[index] == entry.addr[0]:
                del ips[index]

    def _split(self, now: float) -> None:
        last = self.buckets[-1]
        depth = len(self.buckets) - 1
        new_bucket = Bucket(now)
        new_bucket.last_changed = last.last_changed
        keep: list[NodeEntry] = []
        for entry in last.nodes:
            if ID_BITS - (self._own ^ int.from_bytes(entry.node_id, "big")).bit_length() > depth:
                new_bucket.nodes.append(entry)
            else:
                keep.append(entry)
        spare: list[NodeEntry] = []
        for entry in last.replacements:
            if ID_BITS - (self._own ^ int.from_bytes(entry.node_id, "big")).bit_length() > depth:
                spare.append(entry)
        last.replacements = [entry for entry in last.replacements if entry not in spare]
        last.nodes = keep
        new_bucket.replacements = spare
        self.buckets.append(new_bucket)

    def failed(self, node_id: bytes, addr: Address) -> None:
        """A query to this node timed out; evict it once bad and a replacement exists."""
        key = int.from_bytes(node_id, "big")
        bucket = self.buckets[self.bucket_index(key)]
        for entry in bucket.nodes:
            if entry.node_id == node_id and entry.addr == addr:
                entry.failures += 1
                # A contact that never answered us (imported, unverified) makes room for
                # a replacement that did at its first failure; others after max_failures.
                limit = 1 if entry.last_seen == NEVER else self._config.max_failures
                if entry.failures >= limit and bucket.replacements:
                    self._remove(bucket, entry)
                    self._promote_replacement(bucket)
                elif entry.failures >= 2 * self._config.max_failures:
                    self._remove(bucket, entry)
                return

    def _promote_replacement(self, bucket: Bucket) -> None:
        restrict = self._config.restrict_ips
        # The fastest of those that answered lately (unmeasured ones count as slow).
        bucket.replacements.sort(key=lambda entry: -entry.rtt if entry.rtt > 0.0 else NEVER)
        while bucket.replacements:
            candidate = bucket.replacements.pop()
            if restrict and (
                self._has_ip(candidate.addr[0]) or _same_network(bucket.nodes, candidate.addr[0])
            ):
                continue
            bucket.nodes.append(candidate)
            if restrict:
                insort(self._ips, candidate.addr[0])
            return
