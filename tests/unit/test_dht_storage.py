"""Write tokens, the per-IP rate limiter, and bounded peer / item storage."""

from __future__ import annotations

import random

from servent.proto.dht.ratelimit import QueryRateLimiter
from servent.proto.dht.storage import ItemStore, PeerStore, StoredItem
from servent.proto.dht.tokens import TokenIssuer


def test_token_is_bound_to_ip_and_survives_one_rotation() -> None:
    tokens = TokenIssuer(random.Random(1), 0.0, 300.0)
    token = tokens.token_for("1.2.3.4")
    assert tokens.is_valid(token, "1.2.3.4")
    assert not tokens.is_valid(token, "1.2.3.5")
    tokens.maybe_rotate(299.0)
    assert tokens.token_for("1.2.3.4") == token  # not yet
    tokens.maybe_rotate(300.0)
    assert tokens.is_valid(token, "1.2.3.4") and tokens.token_for("1.2.3.4") != token
    tokens.maybe_rotate(600.0)
    assert not tokens.is_valid(token, "1.2.3.4")


def test_token_of_wrong_type_or_length_is_invalid() -> None:
    tokens = TokenIssuer(random.Random(1), 0.0, 300.0)
    assert not tokens.is_valid(None, "1.2.3.4")
    assert not tokens.is_valid(5, "1.2.3.4")
    assert not tokens.is_valid(tokens.token_for("1.2.3.4") + b"x", "1.2.3.4")


def test_rate_limiter_blocks_after_the_burst_and_forgets_idle_ips() -> None:
    limiter = QueryRateLimiter(rate=5.0, burst=10.0, block_duration=60.0, max_tracked=100)
    assert all(limiter.allow("9.9.9.9", 0.0) for _ in range(10))
    assert not limiter.allow("9.9.9.9", 0.0)
    assert limiter.is_blocked("9.9.9.9", 59.0)
    assert not limiter.is_blocked("9.9.9.9", 61.0)
    assert limiter.allow("8.8.8.8", 0.0)
    limiter.forget_idle(100.0)
    assert limiter.blocked_count() == 0


def test_rate_limiter_tracks_a_bounded_number_of_ips() -> None:
    limiter = QueryRateLimiter(rate=5.0, burst=10.0, block_duration=60.0, max_tracked=50)
    for i in range(1000):
        assert limiter.allow(f"10.0.{i // 250}.{i % 250}", 0.0)
    assert len(limiter._buckets) == 50


def test_peer_store_bounds_and_expiry() -> None:
    store = PeerStore(max_hashes=3, max_peers=2, ttl=100.0)
    rng = random.Random(1)
    for h in range(5):
        for p in range(4):
            store.add(bytes([h]) * 20, bytes([p]) * 6, float(h))
    assert len(store) == 3
    assert store.peers(b"\x00" * 20, 10, rng) == []  # oldest info-hash evicted
    assert sorted(store.peers(b"\x04" * 20, 10, rng)) == [b"\x02" * 6, b"\x03" * 6]
    assert len(store.peers(b"\x04" * 20, 1, rng)) == 1
    assert len(store.sample_hashes(2, rng)) == 2
    store.expire(103.5)
    assert len(store) == 1


def test_reannounce_refreshes_a_peer() -> None:
    store = PeerStore(max_hashes=3, max_peers=2, ttl=100.0)
    info_hash = b"\x01" * 20
    store.add(info_hash, b"a" * 6, 0.0)
    store.add(info_hash, b"b" * 6, 1.0)
    store.add(info_hash, b"a" * 6, 2.0)  # moves to the end
    store.add(info_hash, b"c" * 6, 3.0)  # evicts b, the oldest
    assert sorted(store.peers(info_hash, 10, random.Random(1))) == [b"a" * 6, b"c" * 6]


def test_item_store_bounds_and_expiry() -> None:
    store = ItemStore(max_items=2, ttl=50.0)
    for i in range(3):
        store.put(bytes([i]) * 20, StoredItem(b"1:x", float(i)))
    assert len(store) == 2 and store.get(b"\x00" * 20) is None
    store.expire(51.5)
    assert len(store) == 1 and store.get(b"\x02" * 20) is not None
