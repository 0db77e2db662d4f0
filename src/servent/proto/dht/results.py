"""What lookups gather from answers, and the events that report them.

Pure functions over a :class:`~servent.proto.dht.lookup.Lookup`: they check
every field an answering node sent (types, sizes, BEP 44 targets and
signatures) before keeping it, and bound how much one lookup collects.
"""

from __future__ import annotations

import random

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.codec.bencode import DATAGRAM_LIMITS, BValue, decode
from servent.codec.compact import Address, decode_peer
from servent.errors import CompactEncodingError
from servent.proto.dht import items as bep44
from servent.proto.dht import lookup as lk
from servent.proto.dht.events import (
    AnnounceDone,
    DhtEvent,
    ItemFound,
    NodesFound,
    PeersFound,
    PutDone,
    SamplesFound,
)
from servent.proto.dht.krpc import encode_value
from servent.proto.dht.storage import ItemStore, PeerStore

MAX_PEERS_PER_LOOKUP = 2000
MAX_SAMPLES_PER_LOOKUP = 5000
#: As many as one answer may carry (``collect_peers`` reads 200 values per answer).
MAX_OWN_PEERS = 200


def collect_peers(lookup: lk.Lookup, args: dict[bytes, BValue]) -> tuple[Address, ...]:
    """Keep the peers of an answer's ``values``; returns those the lookup did not have."""
    values = args.get(b"values")
    if type(values) is not list:
        return ()
    peers = lookup.extra.setdefault("peers", {})
    assert isinstance(peers, dict)
    fresh: list[Address] = []
    for value in values[:200]:
        if type(value) is bytes and len(peers) < MAX_PEERS_PER_LOOKUP:
            try:
                peer = decode_peer(value)
            except CompactEncodingError:
                continue
            if peer[1] and peer not in peers:
                peers[peer] = None
                fresh.append(peer)
    return tuple(fresh)


def collect_item(lookup: lk.Lookup, args: dict[bytes, BValue]) -> None:
    if b"v" not in args:
        return
    encoded = encode_value(args[b"v"])
    if len(encoded) > bep44.MAX_VALUE_SIZE:
        return
    key = args.get(b"k")
    if key is None:
        if bep44.immutable_target(encoded) == lookup.target:
            lookup.extra["item"] = (args[b"v"], None, None, None)
            lookup.extra["immutable_found"] = True
        return
    sig = args.get(b"sig")
    seq = args.get(b"seq")
    salt = lookup.extra.get("salt", b"")
    assert isinstance(salt, bytes)
    if type(key) is not bytes or type(sig) is not bytes or type(seq) is not int or seq < 0:
        return
    if bep44.mutable_target(key, salt) != lookup.target:
        return
    best = lookup.extra.get("item")
    if isinstance(best, tuple) and best[1] is not None and best[1] >= seq:
        return
    if bep44.verify(key, sig, encoded, seq, salt):
        lookup.extra["item"] = (args[b"v"], seq, key, sig)


def own_peers_answer(target: bytes, peers: PeerStore, rng: random.Random) -> dict[bytes, BValue]:
    """The ``values`` this node would answer itself for ``target``, so its own lookups
    count peers announced to it without querying itself: in a small network the asker
    may be the only node that stored them."""
    stored = peers.peers(target, MAX_OWN_PEERS, rng)
    return {b"values": list[BValue](stored)} if stored else {}


def own_item_answer(target: bytes, items: ItemStore) -> dict[bytes, BValue]:
    """The BEP 44 item this node would answer itself for ``target`` (see above)."""
    item = items.get(target)
    if item is None:
        return {}
    args: dict[bytes, BValue] = {b"v": decode(item.value, DATAGRAM_LIMITS)}
    if item.mutable:
        args[b"k"] = item.public_key
        args[b"sig"] = item.signature
        args[b"seq"] = item.seq
    return args


def collect_samples(lookup: lk.Lookup, args: dict[bytes, BValue]) -> None:
    samples = args.get(b"samples")
    found = lookup.extra.setdefault("samples", {})
    assert isinstance(found, dict)
    if type(samples) is bytes and len(samples) % 20 == 0:
        for offset in range(0, min(len(samples), 20 * 200), 20):
            if len(found) < MAX_SAMPLES_PER_LOOKUP:
                found[samples[offset : offset + 20]] = None
    num = args.get(b"num")
    if type(num) is int and num >= 0:
        lookup.extra["num"] = max(num, as_int(lookup.extra.get("num")))
    interval = args.get(b"interval")
    if type(interval) is int and interval >= 0:
        lookup.extra["interval"] = interval


def finished_event(lookup: lk.Lookup, k: int) -> DhtEvent | None:
    """The event that reports a finished lookup (None for internal refreshes)."""
    kind = lookup.kind
    closest = tuple((c.node_id, c.addr) for c in lookup.closest_responded(k))
    extra = lookup.extra
    event: DhtEvent | None
    if kind == lk.FIND_NODE:
        event = NodesFound(lookup.lookup_id, lookup.target, closest)
    elif kind == lk.GET_PEERS:
        event = PeersFound(lookup.lookup_id, lookup.target, peers_of(lookup), closest)
    elif kind == lk.GET_ITEM:
        item = extra.get("item")
        salt = extra.get("salt", b"")
        assert isinstance(salt, bytes)
        if isinstance(item, tuple):
            event = ItemFound(
                lookup.lookup_id, lookup.target, item[0], item[1], item[2], item[3], salt
            )
        else:
            event = ItemFound(lookup.lookup_id, lookup.target, None, salt=salt)
    elif kind == lk.SAMPLE:
        samples = extra.get("samples", {})
        assert isinstance(samples, dict)
        event = SamplesFound(
            lookup.lookup_id, lookup.target, tuple(samples),
            as_int(extra.get("num")), as_int(extra.get("interval")),
        )  # fmt: skip
    elif kind == lk.ANNOUNCE:
        event = AnnounceDone(lookup.lookup_id, lookup.target, lookup.stored, peers_of(lookup))
    elif kind in (lk.PUT_IMMUTABLE, lk.PUT_MUTABLE):
        seq = extra.get("seq")
        error = extra.get("error")
        event = PutDone(
            lookup.lookup_id, lookup.target, lookup.stored,
            seq if isinstance(seq, int) else None,
            error if isinstance(error, str) and lookup.stored == 0 else None,
        )  # fmt: skip
    else:
        event = None  # internal refresh
    return event


def signed_fields(lookup: lk.Lookup) -> dict[bytes, BValue]:
    extra = lookup.extra
    seq = extra.get("seq")
    if not isinstance(seq, int):
        found = extra.get("item")
        seq = found[1] + 1 if isinstance(found, tuple) and isinstance(found[1], int) else 1
        extra["seq"] = seq
    salt = extra.get("salt", b"")
    encoded = extra["encoded"]
    key = extra["key"]
    public = extra["public"]
    assert isinstance(salt, bytes) and isinstance(encoded, bytes) and isinstance(public, bytes)
    assert isinstance(key, Ed25519PrivateKey)
    fields: dict[bytes, BValue] = {
        b"k": public, b"seq": seq, b"sig": bep44.sign(key, encoded, seq, salt),
    }  # fmt: skip
    if salt:
        fields[b"salt"] = salt
    cas = extra.get("cas")
    if isinstance(cas, int):
        fields[b"cas"] = cas
    return fields


def as_int(value: object) -> int:
    return value if isinstance(value, int) else 0


def peers_of(lookup: lk.Lookup) -> tuple[Address, ...]:
    peers = lookup.extra.get("peers", {})
    assert isinstance(peers, dict)
    return tuple(peers)
