"""Answering queries from other nodes: BEP 5 methods plus BEP 32, 44 and 51.

Query methods are registrations in :data:`DHT_METHODS` (the built-in ones at
the end of this module); a new method is a function registered with
:func:`dht_method`, nothing else.  Each handler validates its own arguments
(raising :class:`~servent.errors.DhtError` with the KRPC code to answer with)
and returns the response values, using the server's public parts (its ID,
stores, tokens and :meth:`QueryServer.add_nodes`).
:meth:`QueryServer.answer` encodes them and keeps the reply within a size
budget proportional to the query, trimming peer lists and samples first, so
the node cannot be used to amplify traffic.
"""

from __future__ import annotations

import random
import socket
import struct
from collections.abc import Callable

from servent.codec.bencode import DATAGRAM_LIMITS, BValue, decode
from servent.codec.compact import Address, encode_nodes, encode_peer
from servent.errors import CompactEncodingError, DhtError, DhtItemError
from servent.proto.dht import items as bep44
from servent.proto.dht.config import DhtConfig
from servent.proto.dht.events import DhtEvent, PeerAnnounced
from servent.proto.dht.krpc import (
    CAS_MISMATCH,
    INVALID_SIGNATURE,
    METHOD_UNKNOWN,
    SALT_TOO_BIG,
    SEQ_TOO_LOW,
    VALUE_TOO_BIG,
    Message,
    encode_error,
    encode_response,
    encode_value,
)
from servent.proto.dht.routing import NodeEntry
from servent.proto.dht.routing_families import FamilyRoutingTables
from servent.proto.dht.storage import ItemStore, PeerStore, StoredItem
from servent.proto.dht.tokens import TokenIssuer

Values = dict[bytes, BValue]
ITEM_REPLY_CEILING = 1500  # a BEP 44 value (<= 1000 bytes) plus key, signature and nodes


def _compact_nodes(entries: list[NodeEntry]) -> bytes:
    """Compact node info of routing entries (their addresses came from sockets)."""
    try:
        return b"".join(
            entry.node_id + _pack_ip(entry.addr[0]) + _PORT.pack(entry.addr[1]) for entry in entries
        )
    except (OSError, ValueError, struct.error):
        return encode_nodes((entry.node_id, entry.addr) for entry in entries)


def _pack_ip(ip: str) -> bytes:
    return socket.inet_pton(socket.AF_INET6, ip) if ":" in ip else socket.inet_aton(ip)


_PORT = struct.Struct(">H")


QueryHandler = Callable[["QueryServer", Values, Address, float], Values]
"""``(server, arguments, source address, now) -> response values`` (``id`` included)."""


class DhtMethods:
    """KRPC query methods a node answers, by name."""

    def __init__(self) -> None:
        self._handlers: dict[bytes, QueryHandler] = {}
        #: The lookup :meth:`QueryServer.answer` does per query (a plain dict ``get``).
        self.get = self._handlers.get

    def register(self, name: bytes, handler: QueryHandler) -> None:
        if not name or len(name) > MAX_METHOD_NAME:
            raise ValueError(f"bad DHT method name {name!r}")
        if name in self._handlers:
            raise ValueError(f"DHT method {name!r} is registered twice")
        self._handlers[name] = handler

    def unregister(self, name: bytes) -> None:
        self._handlers.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._handlers

    def names(self) -> list[bytes]:
        return list(self._handlers)


MAX_METHOD_NAME = 64
#: Every node's query methods (one table for all nodes: simulators run thousands).
DHT_METHODS = DhtMethods()


def dht_method(name: bytes) -> Callable[[QueryHandler], QueryHandler]:
    """Function decorator: answer queries for method ``name`` with the function."""

    def register(handler: QueryHandler) -> QueryHandler:
        DHT_METHODS.register(name, handler)
        return handler

    return register


def _require_id(args: Values, key: bytes) -> bytes:
    value = args.get(key)
    if type(value) is not bytes or len(value) != 20:
        raise DhtError(f"argument {key.decode()!r} must be 20 bytes")
    return value


class QueryServer:
    """Answers queries; owns no transport (the node sends what it returns)."""

    __slots__ = (
        "_budget",
        "_config",
        "_events",
        "_items",
        "_own_id",
        "_peers",
        "_rng",
        "_table",
        "_tokens",
    )

    def __init__(  # noqa: PLR0917 - one reference per collaborator
        self,
        own_id: bytes,
        config: DhtConfig,
        table: FamilyRoutingTables,
        tokens: TokenIssuer,
        peers: PeerStore,
        items: ItemStore,
        rng: random.Random,
        events: Callable[[DhtEvent], None],
    ) -> None:
        self._own_id = own_id
        self._config = config
        self._table = table
        self._tokens = tokens
        self._peers = peers
        self._items = items
        self._rng = rng
        self._events = events
        self._budget = config.reply_size_floor

    # -- what query handlers use -------------------------------------------

    @property
    def own_id(self) -> bytes:
        return self._own_id

    @property
    def config(self) -> DhtConfig:
        return self._config

    @property
    def tokens(self) -> TokenIssuer:
        return self._tokens

    @property
    def peers(self) -> PeerStore:
        return self._peers

    @property
    def items(self) -> ItemStore:
        return self._items

    @property
    def rng(self) -> random.Random:
        return self._rng

    @property
    def reply_budget(self) -> int:
        """Bytes the reply to the query being answered may take."""
        return self._budget

    def emit(self, event: DhtEvent) -> None:
        """Tell the node's owner (as ``next_event`` does)."""
        self._events(event)

    def rebind(self, own_id: bytes, table: FamilyRoutingTables) -> None:
        """Answer as ``own_id`` from ``table`` from now on (the node changed its ID)."""
        self._own_id = own_id
        self._table = table

    def answer(self, msg: Message, addr: Address, query_length: int, now: float) -> bytes:
        """The encoded response (or KRPC error) to one query."""
        config = self._config
        ceiling = config.reply_size_ceiling
        budget = min(ceiling, max(config.reply_size_floor, config.reply_size_factor * query_length))
        self._budget = budget  # lets handlers size peer lists before encoding
        handler = DHT_METHODS.get(msg.method)
        try:
            if handler is None:
                raise DhtError(f"method {msg.method!r} unknown", METHOD_UNKNOWN)
            values = handler(self, msg.args, addr, now)
            reflected = encode_peer(addr)
        except DhtError as exc:
            return encode_error(msg.tid, exc.code, str(exc), version=config.client_version)
        except CompactEncodingError:
            return encode_error(
                msg.tid, 202, "unusable source address", version=config.client_version
            )
        data = encode_response(
            msg.tid, values, reflected_ip=reflected, version=config.client_version
        )
        if b"v" in values:
            budget = min(ITEM_REPLY_CEILING, max(budget, config.reply_size_floor * 2))
        if len(data) > budget:
            data = self._shrink(msg.tid, values, reflected, budget)
        return data

    def _shrink(self, tid: bytes, values: Values, reflected: bytes, budget: int) -> bytes:
        """Trim peer lists and samples, then node lists, until the reply fits ``budget``."""
        version = self._config.client_version
        data = encode_response(tid, values, reflected_ip=reflected, version=version)
        for key, size in ((b"values", 0), (b"samples", 20)):
            for _ in range(8):  # converges in one or two passes; bounded anyway
                excess = len(data) - budget
                field = values.get(key)
                if excess <= 0 or not field or type(field) not in (list, bytes):
                    break
                if type(field) is list:
                    first = field[0]
                    step = len(first) + len(b"%d" % len(first)) + 1 if type(first) is bytes else 8
                    values[key] = field[: max(0, len(field) - -(-excess // step))]
                elif type(field) is bytes:
                    values[key] = field[: max(0, len(field) - -(-excess // size) * size)]
                data = encode_response(tid, values, reflected_ip=reflected, version=version)
        for key in (b"nodes6", b"nodes"):
            if len(data) <= budget:
                break
            if key in values:
                del values[key]
                data = encode_response(tid, values, reflected_ip=reflected, version=version)
        return data

    # -- helpers ---------------------------------------------------------

    def add_nodes(self, target: bytes, addr: Address, args: Values, out: Values) -> Values:
        """Add ``nodes`` / ``nodes6`` as the requester's family or its ``want`` asks (BEP 32)."""
        want = args.get(b"want")
        if type(want) is list and want:
            want = want[:4]
            wants4 = b"n4" in want
            wants6 = b"n6" in want
        else:
            wants6 = ":" in addr[0]
            wants4 = not wants6
        k = self._config.k
        if wants4:
            out[b"nodes"] = _compact_nodes(self._table.closest(target, k, ipv6=False))
        if wants6:
            out[b"nodes6"] = _compact_nodes(self._table.closest(target, k, ipv6=True))
        return out

    # -- BEP 5 -----------------------------------------------------------

    def _ping(self, args: Values, addr: Address, now: float) -> Values:
        return {b"id": self._own_id}

    def _find_node(self, args: Values, addr: Address, now: float) -> Values:
        target = _require_id(args, b"target")
        return self.add_nodes(target, addr, args, {b"id": self._own_id})

    def _get_peers(self, args: Values, addr: Address, now: float) -> Values:
        info_hash = _require_id(args, b"info_hash")
        out: Values = {b"id": self._own_id, b"token": self._tokens.token_for(addr[0])}
        family6 = ":" in addr[0]
        # room for the peers once id, token, 8 nodes and the envelope (~320 bytes) are in,
        # so the reply rarely needs trimming (re-encoding) afterwards
        limit = min(
            100, max(8, (self._budget - (430 if family6 else 330)) // (21 if family6 else 8))
        )
        peers = self._peers.peers(info_hash, limit, self._rng)
        if peers:
            same = [peer for peer in peers if (len(peer) == 18) == family6]
            if same:
                out[b"values"] = list[BValue](same)
        return self.add_nodes(info_hash, addr, args, out)

    def _announce_peer(self, args: Values, addr: Address, now: float) -> Values:
        info_hash = _require_id(args, b"info_hash")
        if not self._tokens.is_valid(args.get(b"token"), addr[0]):
            raise DhtError("bad token")
        if args.get(b"implied_port") == 1:
            port = addr[1]
        else:
            port_arg = args.get(b"port")
            if type(port_arg) is not int or not 0 < port_arg < 65536:
                raise DhtError("bad port")
            port = port_arg
        try:
            compact = encode_peer((addr[0], port))
        except CompactEncodingError as exc:
            raise DhtError("unusable source address") from exc
        self._peers.add(info_hash, compact, now)
        self._events(PeerAnnounced(info_hash, (addr[0], port)))
        return {b"id": self._own_id}

    # -- BEP 51 ----------------------------------------------------------

    def _sample_infohashes(self, args: Values, addr: Address, now: float) -> Values:
        target = _require_id(args, b"target")
        samples = self._peers.sample_hashes(self._config.max_samples, self._rng)
        out: Values = {
            b"id": self._own_id,
            b"interval": self._config.sample_interval,
            b"num": len(self._peers),
            b"samples": b"".join(samples),
        }
        return self.add_nodes(target, addr, args, out)

    # -- BEP 44 ----------------------------------------------------------

    def _get(self, args: Values, addr: Address, now: float) -> Values:
        target = _require_id(args, b"target")
        out: Values = {b"id": self._own_id, b"token": self._tokens.token_for(addr[0])}
        item = self._items.get(target)
        if item is not None:
            seq = args.get(b"seq")
            if item.mutable:
                out[b"seq"] = item.seq
                if type(seq) is int and seq >= item.seq:
                    return self.add_nodes(target, addr, args, out)  # they already have it
                out[b"k"] = item.public_key
                out[b"sig"] = item.signature
            out[b"v"] = decode(item.value, DATAGRAM_LIMITS)  # canonical, so this re-encodes exactly
        return self.add_nodes(target, addr, args, out)

    def _put(self, args: Values, addr: Address, now: float) -> Values:
        if not self._tokens.is_valid(args.get(b"token"), addr[0]):
            raise DhtError("bad token")
        if b"v" not in args:
            raise DhtError("put without a value")
        value = encode_value(args[b"v"])
        if len(value) > bep44.MAX_VALUE_SIZE:
            raise DhtItemError("value too big", VALUE_TOO_BIG)
        key = args.get(b"k")
        if key is None:
            self._items.put(bep44.immutable_target(value), StoredItem(value, now))
            return {b"id": self._own_id}
        salt = args.get(b"salt", b"")
        sig = args.get(b"sig")
        seq = args.get(b"seq")
        if type(salt) is not bytes:
            raise DhtError("salt must be a string")
        if len(salt) > bep44.MAX_SALT_SIZE:
            raise DhtItemError("salt too big", SALT_TOO_BIG)
        if type(key) is not bytes or type(sig) is not bytes or type(seq) is not int or seq < 0:
            raise DhtError("mutable put needs k, sig and seq")
        if not bep44.verify(key, sig, value, seq, salt):
            raise DhtItemError("invalid signature", INVALID_SIGNATURE)
        target = bep44.mutable_target(key, salt)
        stored = self._items.get(target)
        if stored is not None:
            cas = args.get(b"cas")
            if cas is not None and cas != stored.seq:
                raise DhtItemError("cas mismatch", CAS_MISMATCH)
            if seq < stored.seq or (seq == stored.seq and value != stored.value):
                raise DhtItemError("sequence number less than current", SEQ_TOO_LOW)
        self._items.put(target, StoredItem(value, now, key, sig, seq, salt))
        return {b"id": self._own_id}


for _name, _handler in (
    (b"ping", QueryServer._ping),
    (b"find_node", QueryServer._find_node),
    (b"get_peers", QueryServer._get_peers),
    (b"announce_peer", QueryServer._announce_peer),
    (b"get", QueryServer._get),
    (b"put", QueryServer._put),
    (b"sample_infohashes", QueryServer._sample_infohashes),
):
    DHT_METHODS.register(_name, _handler)
