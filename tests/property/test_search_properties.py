"""Search cores under random input: messages never crash the decoder; the store keeps its bounds."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.proto.search import (
    FILE,
    KeywordIndexStore,
    QueryResults,
    SearchEntry,
    SearchProtocolError,
    decode_message,
    encode_message,
    matches,
    words,
)

NOW = 1_000_000


@given(st.binary(max_size=2000))
def test_decoder_refuses_garbage_with_one_error_or_round_trips(raw: bytes) -> None:
    try:
        message = decode_message(raw)
    except SearchProtocolError:
        return
    assert decode_message(encode_message(message)) == message


@given(st.text(max_size=300))
def test_a_name_matches_any_of_its_own_words(name: str) -> None:
    for word in words(name):
        assert matches(word, [name])
        assert matches(word[: max(1, len(word) // 2)], [name])


entries = st.tuples(
    st.integers(0, 5),  # publisher
    st.integers(0, 20),  # thing
    st.integers(-5, 7200),  # life
    st.sampled_from(["blue danube", "danube waltz", "radio waltz", "x"]),
)


@settings(max_examples=60)
@given(st.lists(entries, max_size=200), st.integers(1, 8), st.integers(1, 40))
def test_store_bounds_hold_under_any_sequence(
    stored: list[tuple[int, int, int, str]], per_publisher: int, capacity: int
) -> None:
    store = KeywordIndexStore(per_publisher=per_publisher, capacity=capacity)
    for step, (who, thing, life, name) in enumerate(stored):
        now = NOW + step
        entry = SearchEntry(
            FILE, name, bytes([who]) * 32, bytes(6), now + life, info_hash=bytes([thing]) * 20
        )
        store.store(entry, now)
        assert len(store) <= capacity
        for publisher in range(6):
            assert store.publisher_count(bytes([publisher]) * 32) <= per_publisher
        store.expire(now)
        assert all(e.expires > now for e in store.entries())
    now = NOW + len(stored) + 7300
    store.expire(now)
    assert len(store) == 0
    assert store.lookup("danube", now) == []


def _result_view(results: QueryResults) -> dict[bytes, int]:
    return {r.key: r.sources for r in results.ranked()}


@settings(max_examples=60)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 6)), max_size=40),
    st.randoms(use_true_random=False),
    st.integers(1, 5),
)
def test_merging_is_independent_of_order_and_batching(
    found: list[tuple[int, int]], rng: random.Random, batch: int
) -> None:
    """Same answers in any order and any batches: same torrents, same source counts."""
    entries = [
        SearchEntry(
            FILE,
            f"danube waltz {thing}",
            bytes([who]) * 32,
            bytes(6),
            NOW + 60,
            info_hash=bytes([thing]) * 20,
        )
        for who, thing in found
    ]
    first = QueryResults("danube", limit=200, verify=lambda _: True)
    first.add(entries, NOW)
    shuffled = list(entries)
    rng.shuffle(shuffled)
    second = QueryResults("danube", limit=200, verify=lambda _: True)
    for start in range(0, len(shuffled), batch):
        second.add(shuffled[start : start + batch], NOW)
    assert _result_view(first) == _result_view(second)
    expected = {bytes([t]) * 20: len({w for w, t2 in found if t2 == t}) for _, t in found}
    assert _result_view(first) == expected
