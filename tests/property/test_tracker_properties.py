"""Hostile tracker input: garbage and huge answers raise TrackerError, nothing else."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.codec import bencode
from servent.codec.tracker import (
    AnnounceResponse,
    decode_udp_request,
    decode_udp_response,
    encode_announce_response,
    parse_announce_query,
    parse_announce_response,
    parse_scrape_response,
)
from servent.errors import TrackerError

bvalues = st.recursive(
    st.integers(-(2**70), 2**70) | st.binary(max_size=40),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from([b"interval", b"peers", b"peers6", b"ip", b"port", b"files", b"x"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_http_bodies_raise_only_tracker_error(body: bytes) -> None:
    for parse in (parse_announce_response, parse_scrape_response):
        with contextlib.suppress(TrackerError):
            parse(body)


@settings(max_examples=300, deadline=None)
@given(bvalues)
def test_structured_garbage_raises_only_tracker_error(value: bencode.BValue) -> None:
    body = bencode.encode(value)
    for parse in (parse_announce_response, parse_scrape_response):
        with contextlib.suppress(TrackerError):
            parse(body)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.booleans())
def test_garbage_datagrams_raise_only_tracker_error(data: bytes, ipv6: bool) -> None:
    for decode in (decode_udp_request, lambda d: decode_udp_response(d, ipv6=ipv6)):
        with contextlib.suppress(TrackerError):
            decode(data)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_garbage_query_strings_raise_only_tracker_error(query: str) -> None:
    with contextlib.suppress(TrackerError):
        parse_announce_query(query)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 100_000), st.integers(1, 500))
def test_huge_peer_lists_are_cut_to_the_bound(count: int, bound: int) -> None:
    peers = tuple(
        (f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 1 + i % 60000) for i in range(count)
    )
    body = encode_announce_response(AnnounceResponse(interval=60, peers=peers))
    try:
        parsed = parse_announce_response(body, max_peers=bound)
    except TrackerError:
        assert len(body) > 2 * 1024 * 1024
    else:
        assert len(parsed.peers) == min(count, bound)
