"""``DhtNode``: one Mainline DHT node as a sans-IO state machine.

Feed it datagrams with :meth:`DhtNode.receive_datagram` and time with
:meth:`DhtNode.handle_timer`; take what it wants to send from
:meth:`DhtNode.datagrams_to_send` and what happened from
:meth:`DhtNode.next_event`. The same object runs behind the asyncio UDP
driver and inside the simulator, which is why it never reads a clock, never
touches a socket and keeps per-node memory small.

This module holds the node's faces (driver and application), answers to our
queries, routing-table upkeep and the BEP 42 external address; sending
queries and running lookups live in :mod:`servent.proto.dht.searches`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.codec.bencode import BValue
from servent.codec.compact import Address
from servent.errors import DhtItemError, KrpcDecodeError
from servent.proto.dht import items as bep44
from servent.proto.dht import lookup as lk
from servent.proto.dht.config import DhtConfig
from servent.proto.dht.events import (
    DhtEvent,
    ExternalAddressChanged,
    NodeIdChanged,
    PingDone,
)
from servent.proto.dht.external_ip import ExternalIpVoter, ReflectedPorts
from servent.proto.dht.krpc import (
    ERROR,
    QUERY,
    Message,
    encode_error,
    encode_value,
    parse_message,
)
from servent.proto.dht.node_id import generate_secure_id, is_secure_id
from servent.proto.dht.ratelimit import QueryRateLimiter
from servent.proto.dht.routing import NodeEntry
from servent.proto.dht.routing_families import FamilyRoutingTables
from servent.proto.dht.rtt import RoundTripEstimator
from servent.proto.dht.searches import SearchRunner
from servent.proto.dht.server import QueryServer
from servent.proto.dht.storage import ItemStore, PeerStore
from servent.proto.dht.tokens import TokenIssuer
from servent.proto.dht.transactions import (
    LATE,
    PURPOSE_LOOKUP,
    PURPOSE_PING,
    PURPOSE_STORE,
    PURPOSE_TABLE,
    SLOW,
    Transaction,
    TransactionTable,
)

log = logging.getLogger(__name__)

_MAX_TABLE_PINGS = 16


class DhtNode(SearchRunner):
    """A Mainline DHT node (BEP 5, 32, 42, 43, 44, 51), fed datagrams and time."""

    __slots__ = (
        "_ip_voters",
        "_limiter",
        "_next_maintenance",
        "_refresh",
        "_rng",
        "_server",
        "config",
        "dual_stack",
        "external_ip",
        "external_ip6",
        "items",
        "node_id",
        "peers",
        "reflected_ports",
        "routing_table",
        "tokens",
    )

    def __init__(
        self,
        node_id: bytes,
        *,
        config: DhtConfig = DhtConfig(),  # noqa: B008 - frozen, shared safely
        rng: random.Random,
        now: float,
    ) -> None:
        if len(node_id) != 20:
            raise ValueError("a node ID has 20 bytes")
        self.node_id = node_id
        self.config = config
        self._rng = rng
        self.routing_table = FamilyRoutingTables(node_id, config, now)
        self.tokens = TokenIssuer(rng, now, config.token_rotation)
        self.peers = PeerStore(
            config.max_infohashes, config.max_peers_per_infohash, config.peer_ttl
        )
        self.items = ItemStore(config.max_items, config.item_ttl)
        self._limiter = (
            QueryRateLimiter(
                config.rate_limit_per_ip,
                config.rate_burst,
                config.block_duration,
                config.max_tracked_ips,
            )
            if config.rate_limit_per_ip > 0
            else None
        )
        # A list, not a deque: an empty deque costs ~600 bytes per node in the simulator.
        self._events: list[DhtEvent] = []
        self._server = QueryServer(
            node_id,
            config,
            self.routing_table,
            self.tokens,
            self.peers,
            self.items,
            rng,
            self._events.append,
        )
        self._out: list[tuple[bytes, Address]] = []
        self._tx = TransactionTable(rng.getrandbits(16), config.max_pending)
        self._lookups: dict[int, lk.Lookup] = {}
        self._next_id = 1
        # The first round comes soon: contacts imported at start get verified (and the
        # round-trip estimate its first samples) before lookups rely on them.
        self._next_maintenance = now + min(config.first_maintenance, config.maintenance_interval)
        self._refresh = 0  # id of the running bucket refresh (an id, so a finished lookup is freed)
        self._table_pings = 0
        self._pinging: list[bytes] = []
        self._rtt = RoundTripEstimator()
        self._stats: dict[str, int] = {}
        #: One voter per family (True: IPv6), created on the first report that disagrees
        #: and dropped once recent reports agree: most simulated nodes never keep one.
        self._ip_voters: dict[bool, ExternalIpVoter] | None = None
        #: Our IPv4 and IPv6 addresses as responders of each family agree on them.
        self.external_ip: str | None = None
        self.external_ip6: str | None = None
        #: The IPv4 ports answers saw us at (made on the first report): the NAT's kind.
        self.reflected_ports: ReflectedPorts | None = None
        #: Set by a driver with both an IPv4 and an IPv6 socket: lookups then ask
        #: for both families (``want``) and follow nodes of both (BEP 32).
        self.dual_stack = False

    # -- the driver's interface -----------------------------------------

    def receive_datagram(self, data: bytes, addr: Address, now: float) -> None:
        """Handle one datagram from ``addr``; never raises for hostile input."""
        limiter = self._limiter
        if limiter is not None and limiter.is_blocked(addr[0], now):
            self._count("dropped_blocked")
            return
        try:
            msg = parse_message(data)
        except KrpcDecodeError as exc:
            self._count("dropped_malformed")
            if (
                exc.tid is not None
                and not self.config.read_only
                and (limiter is None or limiter.allow(addr[0], now))
            ):
                self._out.append((encode_error(exc.tid, exc.code, str(exc)), addr))
            return
        if msg.sender_id == self.node_id:
            self._count("dropped_reflected")  # our own ID coming back: a reflection or a spoof
            return
        if msg.kind is QUERY:
            if self.config.read_only:
                return
            if limiter is not None and not limiter.allow(addr[0], now):
                self._count("dropped_rate_limited")
                return
            self._count("queries_received")
            self._out.append((self._server.answer(msg, addr, len(data), now), addr))
            if not msg.read_only:
                self._consider_querier(msg.sender_id, addr, now)
        else:
            self._on_reply(msg, addr, now)

    def datagrams_to_send(self) -> list[tuple[bytes, Address]]:
        out = self._out
        self._out = []
        return out

    def next_timer(self) -> float | None:
        deadline = self._tx.next_deadline()
        if deadline is not None and deadline < self._next_maintenance:
            return deadline
        return self._next_maintenance

    def handle_timer(self, now: float) -> None:
        transactions = self._tx
        while (due := transactions.pop_due(now)) is not None:
            tx, kind = due
            if kind == SLOW:
                self._on_slow(tx, now)
            elif kind == LATE:
                self._on_late(tx, now)
            else:
                self._count("timeouts")
                self._on_timeout(tx, now)
        if now >= self._next_maintenance:
            self._maintain(now)

    def next_event(self) -> DhtEvent | None:
        return self._events.pop(0) if self._events else None

    # -- the application's interface ------------------------------------

    def add_contact(self, addr: Address, now: float) -> None:
        """Ping ``addr``; if it answers it joins the routing table."""
        self._query(addr, b"ping", {}, now, PURPOSE_TABLE, None)

    def bootstrap(self, addrs: Iterable[Address], now: float) -> int:
        """Look up our own ID starting from ``addrs`` (and what the table knows)."""
        return self._start(lk.FIND_NODE, self.node_id, now, seeds=addrs)

    def find_node(self, target: bytes, now: float) -> int:
        return self._start(lk.FIND_NODE, _check_id(target), now)

    def get_peers(self, info_hash: bytes, now: float) -> int:
        return self._start(lk.GET_PEERS, _check_id(info_hash), now)

    def announce(self, info_hash: bytes, port: int, now: float, implied_port: bool = False) -> int:
        if not 0 < port < 65536:
            raise ValueError(f"port {port} out of range")
        lookup_id = self._start(
            lk.ANNOUNCE, _check_id(info_hash), now, extra={"port": port, "implied": implied_port}
        )
        return lookup_id

    def get_item(self, target: bytes, now: float, salt: bytes = b"") -> int:
        return self._start(lk.GET_ITEM, _check_id(target), now, extra={"salt": salt})

    def put_immutable(self, value: BValue, now: float) -> int:
        encoded = encode_value(value)
        if len(encoded) > bep44.MAX_VALUE_SIZE:
            raise DhtItemError("value too big", 205)
        target = bep44.immutable_target(encoded)
        return self._start(
            lk.PUT_IMMUTABLE, target, now, extra={"encoded": encoded, "value": value}
        )

    def put_mutable(  # noqa: PLR0917 - the agreed API
        self,
        private_key: bytes | Ed25519PrivateKey,
        value: BValue,
        now: float,
        salt: bytes = b"",
        seq: int | None = None,
        cas: int | None = None,
    ) -> int:
        """Store a signed item under sha1(public key + salt); ``seq`` defaults to newest + 1."""
        encoded = encode_value(value)
        if len(encoded) > bep44.MAX_VALUE_SIZE:
            raise DhtItemError("value too big", 205)
        if len(salt) > bep44.MAX_SALT_SIZE:
            raise DhtItemError("salt too big", 207)
        key = bep44.private_key_from(private_key)
        public = bep44.public_key_bytes(key)
        target = bep44.mutable_target(public, salt)
        extra: dict[str, object] = {
            "encoded": encoded, "value": value, "key": key, "public": public,
            "salt": salt, "seq": seq, "cas": cas,
        }  # fmt: skip
        return self._start(lk.PUT_MUTABLE, target, now, extra=extra)

    def sample_infohashes(self, target: bytes, now: float) -> int:
        return self._start(lk.SAMPLE, _check_id(target), now)

    def ping(self, addr: Address, now: float) -> int:
        ping_id = self._new_id()
        if not self._query(addr, b"ping", {}, now, PURPOSE_PING, None, tag=ping_id):
            self._events.append(PingDone(ping_id, addr, None))
        return ping_id

    def change_id(self, new_id: bytes, now: float) -> None:
        """Take ``new_id`` (e.g. BEP 42 for a new external IP), keeping the contacts.

        The routing table is rebuilt around the new ID from the old one's
        contacts, and a lookup of the new ID fills the new neighbourhood.
        """
        old_id = self.node_id
        if _check_id(new_id) == old_id:
            return
        contacts = self.routing_table.export_nodes()
        self.node_id = new_id
        self.routing_table = FamilyRoutingTables(new_id, self.config, now)
        self.routing_table.import_nodes(contacts, now)
        self._server.rebind(new_id, self.routing_table)
        self._count("id_changes")
        self._events.append(NodeIdChanged(old_id, new_id, self.external_ip or self.external_ip6))
        self._refresh = self._start(lk.REFRESH, new_id, now)

    @property
    def round_trips(self) -> RoundTripEstimator:
        """The node's round-trip estimate (SRTT, RTTVAR) that sets lookup timeouts."""
        return self._rtt

    def statistics(self) -> dict[str, int]:
        stats = dict(self._stats)
        stats.update(
            routing_nodes=len(self.routing_table),
            buckets=len(self.routing_table.buckets),
            pending_transactions=len(self._tx),
            active_lookups=len(self._lookups),
            stored_infohashes=len(self.peers),
            stored_items=len(self.items),
            blocked_ips=self._limiter.blocked_count() if self._limiter else 0,
            srtt_ms=round(self._rtt.srtt * 1000),
            rttvar_ms=round(self._rtt.rttvar * 1000),
        )
        return stats

    # -- transactions ----------------------------------------------------

    def _on_reply(self, msg: Message, addr: Address, now: float) -> None:
        tx = self._tx.match(msg.tid, addr)
        if tx is None:
            self._count("dropped_unmatched")
            if self._limiter is not None:
                self._limiter.allow(addr[0], now)  # unsolicited replies count as a flood too
            return
        if msg.kind is ERROR:
            self._count("errors_received")
            self._on_error(tx, msg, now)
            return
        self._count("responses_received")
        if tx.node_id is not None and tx.node_id != msg.sender_id:
            self._count("dropped_wrong_id")  # the address now answers with another ID
            self._on_timeout(tx, now)
            return
        if tx.purpose == PURPOSE_TABLE:
            self._table_ping_done(tx)
        sender = msg.sender_id
        round_trip = now - tx.sent_at
        self._rtt.observe(round_trip)
        to_ping = self.routing_table.heard_from(
            sender, addr, now, responded=True, verified=is_secure_id(sender, addr[0]),
            rtt=round_trip,
        )  # fmt: skip
        if to_ping is not None:
            self._ping_entry(to_ping, now)
        if msg.reflected_ip is not None:
            self._vote_external_ip(addr, msg.reflected_ip[0], now)
            if ":" not in addr[0]:
                self.reflected_ports = self.reflected_ports or ReflectedPorts()
                self.reflected_ports.report(addr[0], msg.reflected_ip[1])
        purpose = tx.purpose
        if purpose == PURPOSE_LOOKUP and tx.lookup is not None:
            self._on_lookup_reply(tx.lookup, tx.candidate, msg, addr, now)
        elif purpose == PURPOSE_STORE and tx.lookup is not None:
            self._store_finished(tx.lookup, True, now)
        elif purpose == PURPOSE_PING:
            self._events.append(PingDone(tx.tag, addr, sender))

    def _on_error(self, tx: Transaction, msg: Message, now: float) -> None:
        if tx.purpose == PURPOSE_STORE and tx.lookup is not None:
            text = msg.error_text.decode(errors="replace")
            tx.lookup.extra["error"] = f"{msg.error_code} {text}"
        self._on_error_or_timeout(tx, now)

    def _on_timeout(self, tx: Transaction, now: float) -> None:
        answered_meanwhile = tx.candidate is not None and tx.candidate.state == lk.RESPONDED
        if tx.node_id is not None and not answered_meanwhile:
            self.routing_table.failed(tx.node_id, tx.addr)
        self._on_error_or_timeout(tx, now)

    def _on_error_or_timeout(self, tx: Transaction, now: float) -> None:
        lookup = tx.lookup
        if tx.purpose == PURPOSE_TABLE:
            self._table_ping_done(tx)
        elif tx.purpose == PURPOSE_PING:
            self._events.append(PingDone(tx.tag, tx.addr, None))
        elif tx.purpose == PURPOSE_LOOKUP and lookup is not None:
            if tx.candidate is None:
                lookup.seeds_pending -= 1
            else:
                lookup.failed(tx.candidate)
            self._drive(lookup, now)
        elif tx.purpose == PURPOSE_STORE and lookup is not None:
            self._store_finished(lookup, False, now)

    # -- routing table upkeep --------------------------------------------

    def _ping_entry(self, entry: NodeEntry, now: float) -> None:
        """Ping a contact whose liveness is in doubt, once at a time (every answer we
        park in a full bucket asks for its stalest contact: often the same one)."""
        if self._table_pings < _MAX_TABLE_PINGS and entry.node_id not in self._pinging:
            self._query(entry.addr, b"ping", {}, now, PURPOSE_TABLE, entry.node_id)

    def _table_ping_done(self, tx: Transaction) -> None:
        self._table_pings -= 1
        if tx.node_id is not None and tx.node_id in self._pinging:
            self._pinging.remove(tx.node_id)

    def _consider_querier(self, node_id: bytes, addr: Address, now: float) -> None:
        table = self.routing_table
        if table.find(node_id, addr[0]) is not None:
            table.heard_from(node_id, addr, now, responded=False, verified=False)
        elif self._table_pings < _MAX_TABLE_PINGS and table.would_accept(node_id, addr[0]):
            self._query(addr, b"ping", {}, now, PURPOSE_TABLE, node_id)

    def _vote_external_ip(self, voter: Address, ip: str, now: float) -> None:
        """Count a responder's view of our IP; on a change, maybe take a BEP 42 ID.

        Each family votes apart (a dual-stack node has two external IPs); the
        ID follows the IPv4 address once it is known, so the two never take
        turns at regenerating it.
        """
        ipv6 = ":" in ip
        current = self.external_ip6 if ipv6 else self.external_ip
        voters = self._ip_voters
        tally = voters.get(ipv6) if voters is not None else None
        if tally is None:
            if ip == current:
                return
            tally = ExternalIpVoter(per_port=not self.config.restrict_ips)
            tally.current = current
            if voters is None:
                voters = self._ip_voters = {}
            voters[ipv6] = tally
        changed = tally.vote(voter, ip)
        if voters is not None and tally.votes_for(tally.current or "") == len(tally):
            del voters[ipv6]  # everyone agrees again: keep no memory
            if not voters:
                self._ip_voters = None
        if changed is None:
            return
        if ipv6:
            self.external_ip6 = changed
        else:
            self.external_ip = changed
        self._events.append(ExternalAddressChanged(changed))
        decides_id = self.external_ip or self.external_ip6
        if (
            self.config.regenerate_id
            and decides_id == changed
            and not is_secure_id(self.node_id, changed)
        ):
            self.change_id(generate_secure_id(changed, self._rng), now)

    def _maintain(self, now: float) -> None:
        self._next_maintenance = now + self.config.maintenance_interval
        self.tokens.maybe_rotate(now)
        if self._limiter is not None:
            self._limiter.forget_idle(now)
        self.peers.expire(now)
        self.items.expire(now)
        table = self.routing_table
        if len(table) == 0:
            return
        if self._refresh not in self._lookups:
            if len(table) < self.config.k:
                # Too few contacts (e.g. everyone joined through one node at once):
                # look ourselves up again rather than wait 15 minutes for a refresh.
                self._refresh = self._start(lk.REFRESH, self.node_id, now)
            elif (target := table.refresh_target(now, self._rng)) is not None:
                self._refresh = self._start(lk.REFRESH, target, now)
        for entry in table.questionable(now, self.config.verify_per_maintenance):
            self._ping_entry(entry, now)


def _check_id(value: bytes) -> bytes:
    if len(value) != 20:
        raise ValueError("an ID or info-hash has 20 bytes")
    return value
