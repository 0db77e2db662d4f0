"""The search cores: words, signed entries, messages, the keyword index store, merging, roles."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from servent.codec.bencode import encode
from servent.proto.search import (
    FILE,
    LEAF,
    PERSON,
    ROUTE,
    SUPERNODE,
    AnswererScores,
    KeywordIndexStore,
    Query,
    QueryResults,
    ResultBatch,
    SearchEntry,
    SearchProtocolError,
    Store,
    StoreAnswer,
    SupernodeAsk,
    SupernodeList,
    SupernodeView,
    decide_role,
    decode_message,
    encode_message,
    keyword_key,
    keywords,
    matches,
    rarest_keyword,
    verify_entry,
    words,
)

NOW = 1_000_000.0
ADDRESS = bytes([127, 0, 0, 1, 0x1A, 0xE1])


def publisher() -> tuple[Ed25519PrivateKey, bytes]:
    key = Ed25519PrivateKey.generate()
    return key, key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def file_entry(
    key: Ed25519PrivateKey, public: bytes, name: str, info_hash: bytes, expires: float = NOW + 3600
) -> SearchEntry:
    entry = SearchEntry(
        FILE, name, public, ADDRESS, int(expires), info_hash=info_hash, size=1234, files=1
    )
    return entry.signed(key.sign)


def test_words_split_on_separators_fold_case_and_strip_accents() -> None:
    assert words("Blue_Danube-Waltz.flac") == ["blue", "danube", "waltz", "flac"]
    assert words("Éric SATIE — Gymnopédie N°1") == ["eric", "satie", "gymnopedie", "n", "1"]
    assert matches("danube waltz", ["Blue_Danube-Waltz.flac"])
    assert matches("DANU walt", ["Blue_Danube-Waltz.flac"])
    assert not matches("danube polka", ["Blue_Danube-Waltz.flac"])


def test_keywords_are_the_longest_distinct_words_without_stop_words() -> None:
    found = keywords(["The Blue_Danube-Waltz.flac", "Blue Danube (live).mp3"])
    assert found == ["danube", "waltz", "blue", "live"]
    assert rarest_keyword("blue danube") == "danube"
    assert rarest_keyword("the of") == "the"
    assert rarest_keyword("a") is None
    assert len(keyword_key("danube")) == 20 and keyword_key("danube") != keyword_key("waltz")


def test_whole_word_is_required_for_the_rarest_keyword() -> None:
    assert matches("danube", ["blue danube"], whole="danube")
    assert not matches("danu", ["blue danube"], whole="danu")


def test_entry_signature_covers_every_field() -> None:
    key, public = publisher()
    entry = file_entry(key, public, "Blue Danube", bytes(20))
    assert verify_entry(entry)
    from dataclasses import replace

    assert not verify_entry(replace(entry, name="Blue Danube 2"))
    assert not verify_entry(replace(entry, address=bytes(6)))
    _, other = publisher()
    assert not verify_entry(replace(entry, publisher=other))


def test_messages_round_trip() -> None:
    key, public = publisher()
    entry = file_entry(key, public, "Blue Danube", bytes(range(20)))
    person = SearchEntry(PERSON, "Alice", public, ADDRESS, int(NOW + 60)).signed(key.sign)
    for message in (
        Query(b"12345678", "blue danube", people=False, limit=20, scope=ROUTE),
        Query(b"12345678", "alice", people=True),
        ResultBatch(b"12345678", (entry, person), last=False),
        Store((entry,)),
        Store((entry,), forward=True),
        StoreAnswer(3, 1),
        SupernodeAsk(True, 6881),
        SupernodeList(((public, ADDRESS),)),
    ):
        assert decode_message(encode_message(message)) == message


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"le",
        encode({b"y": b"zz"}),
        encode({b"y": b"q", b"id": b"short", b"q": b"x", b"k": b"f", b"n": 1, b"l": 0}),
        encode({b"y": b"q", b"id": bytes(8), b"q": b"x" * 201, b"k": b"f", b"n": 1, b"l": 0}),
        encode({b"y": b"q", b"id": bytes(8), b"q": b"x", b"k": b"f", b"n": 0, b"l": 0}),
        encode({b"y": b"q", b"id": bytes(8), b"q": b"x", b"k": b"f", b"n": 1, b"l": 3}),
        encode({b"y": b"q", b"id": bytes(8), b"q": b"\xff", b"k": b"f", b"n": 1, b"l": 0}),
        encode({b"y": b"r", b"id": bytes(8), b"e": 1, b"r": [{b"k": b"f"}]}),
        encode({b"y": b"r", b"id": bytes(8), b"e": 1, b"r": [1] * 51}),
        encode({b"y": b"sl", b"l": [{b"k": bytes(32), b"a": bytes(5)}]}),
        b"d1:y1:a2:noi-1e2:oki0ee",
        b"x" * 70_000,
    ],
)
def test_hostile_messages_are_refused(raw: bytes) -> None:
    with pytest.raises(SearchProtocolError):
        decode_message(raw)


def test_store_finds_by_rarest_keyword_and_filters_the_whole_query() -> None:
    key, public = publisher()
    store = KeywordIndexStore()
    assert store.store(file_entry(key, public, "Blue_Danube-Waltz.flac", bytes(20)), NOW)
    assert store.store(file_entry(key, public, "Danube delta documentary", b"\x01" * 20), NOW)
    found = store.lookup("danube waltz", NOW)
    assert [e.name for e in found] == ["Blue_Danube-Waltz.flac"]
    assert len(store.lookup("danube", NOW)) == 2
    assert store.lookup("danube", NOW, people=True) == []


def test_store_keeps_one_entry_per_publisher_and_thing_and_the_newest() -> None:
    key, public = publisher()
    store = KeywordIndexStore()
    store.store(file_entry(key, public, "Blue Danube", bytes(20), NOW + 100), NOW)
    store.store(file_entry(key, public, "Blue Danube", bytes(20), NOW + 200), NOW)
    store.store(file_entry(key, public, "Blue Danube", bytes(20), NOW + 150), NOW)
    assert len(store) == 1 and store.publisher_count(public) == 1
    assert store.lookup("danube", NOW)[0].expires == int(NOW + 200)


def test_store_bounds_per_publisher_and_in_all() -> None:
    key, public = publisher()
    other_key, other = publisher()
    store = KeywordIndexStore(per_publisher=3, capacity=5)
    results = [
        store.store(file_entry(key, public, f"song {i}", bytes([i]) * 20, NOW + 10 + i), NOW)
        for i in range(5)
    ]
    assert results == [True, True, True, False, False]
    for i in range(3):
        store.store(file_entry(other_key, other, f"tune {i}", bytes([i]) * 20, NOW + 100), NOW)
    assert len(store) == 5  # the soonest to expire made room
    assert store.statistics.evicted == 1


def test_store_refuses_expired_and_too_long_lived_entries_and_expires() -> None:
    key, public = publisher()
    store = KeywordIndexStore()
    assert not store.store(file_entry(key, public, "old song", bytes(20), NOW - 1), NOW)
    assert not store.store(file_entry(key, public, "far song", bytes(20), NOW + 3 * 3600), NOW)
    assert store.store(file_entry(key, public, "fine song", bytes(20), NOW + 10), NOW)
    assert store.expire(NOW + 11) == 1 and len(store) == 0
    assert store.lookup("song", NOW + 11) == []


def test_results_merge_by_info_hash_and_count_publishers() -> None:
    key_a, public_a = publisher()
    key_b, public_b = publisher()
    merged = QueryResults("danube", verify=verify_entry)
    changed, bad = merged.add([file_entry(key_a, public_a, "Blue Danube", bytes(20))], NOW)
    assert len(changed) == 1 and bad == 0
    changed, bad = merged.add(
        [
            file_entry(key_b, public_b, "Blue Danube", bytes(20)),
            file_entry(key_b, public_b, "Blue Danube", bytes(20)),
            file_entry(key_b, public_b, "Danube", b"\x02" * 20),
        ],
        NOW,
    )
    assert bad == 0 and len(merged) == 2
    ranked = merged.ranked()
    assert ranked[0].entry.name == "Danube"  # whole-name match ranks first
    assert {r.sources for r in ranked} == {1, 2}


def test_results_refuse_forged_expired_and_unrelated_answers() -> None:
    key, public = publisher()
    from dataclasses import replace

    forged = replace(file_entry(key, public, "Blue Danube", bytes(20)), name="Danube spam")
    merged = QueryResults("danube", verify=verify_entry)
    _, bad = merged.add(
        [
            forged,
            file_entry(key, public, "Blue Danube", bytes(20), NOW - 1),
            file_entry(key, public, "Cheap pills", b"\x03" * 20),
        ],
        NOW,
    )
    assert bad == 3 and len(merged) == 0


def test_answerer_scores_block_a_spammer_for_an_hour() -> None:
    scores = AnswererScores()
    scores.record("honest", 5, 0, NOW)
    scores.record("spammer", 1, 3, NOW)
    assert not scores.blocked("spammer", NOW)
    scores.record("spammer", 0, 3, NOW)
    assert scores.blocked("spammer", NOW) and not scores.blocked("honest", NOW)
    assert not scores.blocked("spammer", NOW + 3601)


def test_roles() -> None:
    assert decide_role("on", reachable=False, uptime=0) == SUPERNODE
    assert decide_role("off", reachable=True, uptime=1e9) == LEAF
    assert decide_role("auto", reachable=True, uptime=1799) == LEAF
    assert decide_role("auto", reachable=True, uptime=1800) == SUPERNODE
    assert decide_role("auto", reachable=False, uptime=1e9) == LEAF
    with pytest.raises(ValueError, match="supernode"):
        decide_role("maybe", reachable=True, uptime=0)


def test_view_orders_by_xor_distance_and_drops_after_two_failures() -> None:
    view: SupernodeView[str] = SupernodeView(capacity=3)
    assert view.add("a", 0b0001) and view.add("b", 0b0100) and view.add("c", 0b1000)
    assert not view.add("d", 0)  # full
    assert view.responsible(0b0000, 2) == ["a", "b"]
    assert view.responsible(0b1001, 3) == ["c", "a", "b"]
    assert not view.failed("a")
    view.succeeded("a")
    assert not view.failed("a")
    assert view.failed("a") and "a" not in view
    assert view.responsible(0b0000, 2) == ["b", "c"]


def test_store_lookup_finds_prefixes_that_are_also_whole_words_of_other_names() -> None:
    """Regression: a query word that is a prefix here but a whole word elsewhere
    ("doba" of "dobaka") must not narrow the lookup to names with that whole word."""
    key, public = publisher()
    store = KeywordIndexStore()
    store.store(file_entry(key, public, "maneek dobaka", bytes(20)), NOW)
    for i in range(3):
        store.store(file_entry(key, public, f"maneek doba {i}", bytes([i + 1]) * 20), NOW)
    found = {e.name for e in store.lookup("maneek doba", NOW)}
    assert "maneek dobaka" in found and len(found) == 4


def test_store_lookup_answers_distinct_torrents_before_copies() -> None:
    """Regression: fifty publishers of one popular torrent hid a rarer match."""
    store = KeywordIndexStore()
    for _ in range(60):
        key, public = publisher()
        store.store(file_entry(key, public, "maneek doba", bytes(20)), NOW)
    key, public = publisher()
    store.store(file_entry(key, public, "Doba Maneek Makamar", b"\x07" * 20), NOW)
    found = store.lookup("maneek doba", NOW, limit=50)
    assert {e.info_hash for e in found} == {bytes(20), b"\x07" * 20}
    assert len(found) == 5  # four copies of the popular one, one of the rarer


def test_request_limiter_holds_each_peer_to_its_rate() -> None:
    from servent.proto.search.limits import RequestLimiter

    limiter = RequestLimiter(rate=5.0, burst=20.0, tracked=2)
    assert all(limiter.allow("flood", NOW) for _ in range(20))
    assert not limiter.allow("flood", NOW)
    assert limiter.allow("quiet", NOW)
    assert limiter.allow("flood", NOW + 0.25)  # one more token after 1/5 s
    assert not limiter.allow("flood", NOW + 0.25)
    assert limiter.refused == 2
    limiter.allow("third", NOW)  # beyond two tracked peers the oldest is forgotten
    assert len(limiter._buckets) == 2
