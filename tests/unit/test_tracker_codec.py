"""Tracker message codecs: round trips and refusal of malformed answers."""

from __future__ import annotations

import struct
import urllib.parse

import pytest

from servent.codec import bencode
from servent.codec.tracker import (
    AnnounceRequest,
    AnnounceResponse,
    ScrapeEntry,
    UdpAnnounceRequest,
    UdpAnnounceResponse,
    UdpConnectRequest,
    UdpConnectResponse,
    UdpErrorResponse,
    UdpScrapeRequest,
    UdpScrapeResponse,
    announce_url,
    decode_udp_request,
    decode_udp_response,
    encode_announce_response,
    encode_failure,
    encode_scrape_response,
    encode_udp_request,
    encode_udp_response,
    parse_announce_query,
    parse_announce_response,
    parse_scrape_query,
    parse_scrape_response,
    scrape_url,
)
from servent.errors import TrackerError, TrackerFailureError

REQ = AnnounceRequest(
    info_hash=bytes(range(20)),
    peer_id=b"-SV0001-" + b"\xff" * 12,
    port=6881,
    uploaded=1,
    downloaded=2,
    left=3,
    event="started",
    numwant=30,
    key=0xDEADBEEF,
)


def test_announce_url_round_trips_through_the_tracker_query_parser() -> None:
    url = announce_url("http://127.0.0.1:1/announce", REQ)
    query = urllib.parse.urlsplit(url).query
    assert parse_announce_query(query) == REQ


def test_announce_url_appends_to_an_existing_query() -> None:
    url = announce_url("http://t/announce?passkey=x", REQ)
    assert url.startswith("http://t/announce?passkey=x&info_hash=")


def test_scrape_url_follows_the_announce_convention() -> None:
    assert scrape_url("http://t:1/announce") == "http://t:1/scrape"
    assert scrape_url("http://t/x/announce.php?a=1") == "http://t/x/scrape.php?a=1"
    assert scrape_url("http://t/a") is None


def test_compact_announce_response_with_ipv4_and_ipv6_peers() -> None:
    resp = AnnounceResponse(
        interval=1800,
        peers=(("127.0.0.1", 1), ("::1", 2)),
        min_interval=60,
        complete=3,
        incomplete=4,
    )
    assert parse_announce_response(encode_announce_response(resp)) == resp


def test_non_compact_announce_response() -> None:
    resp = AnnounceResponse(interval=10, peers=(("10.0.0.1", 5), ("::2", 7)))
    parsed = parse_announce_response(encode_announce_response(resp, compact=False))
    assert parsed.peers == resp.peers


def test_failure_reason_raises_tracker_failure() -> None:
    with pytest.raises(TrackerFailureError, match="not registered"):
        parse_announce_response(encode_failure("torrent not registered"))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"garbage",
        b"li1ee",
        bencode.encode({b"peers": b""}),
        bencode.encode({b"interval": -1, b"peers": b""}),
        bencode.encode({b"interval": 5, b"peers": b"12345"}),
        bencode.encode({b"interval": 5, b"peers": 7}),
        bencode.encode({b"interval": 5, b"peers": [b"x"]}),
        bencode.encode({b"interval": 5, b"peers6": b"x" * 17}),
    ],
)
def test_malformed_announce_responses_raise_tracker_error(body: bytes) -> None:
    with pytest.raises(TrackerError):
        parse_announce_response(body)


def test_huge_peer_list_is_truncated_to_the_bound() -> None:
    peers = b"".join(struct.pack(">4sH", bytes([10, 0, i >> 8, i & 255]), 1) for i in range(5000))
    parsed = parse_announce_response(
        bencode.encode({b"interval": 5, b"peers": peers}), max_peers=100
    )
    assert len(parsed.peers) == 100


def test_oversized_body_is_refused() -> None:
    with pytest.raises(TrackerError, match="too large"):
        parse_announce_response(b"d" + b"x" * (3 * 1024 * 1024))


def test_host_names_in_non_compact_peers_are_skipped() -> None:
    body = bencode.encode(
        {
            b"interval": 5,
            b"peers": [{b"ip": b"example.org", b"port": 1}, {b"ip": b"1.2.3.4", b"port": 2}],
        }
    )
    assert parse_announce_response(body).peers == (("1.2.3.4", 2),)


def test_scrape_round_trip() -> None:
    files = {b"a" * 20: ScrapeEntry(1, 2, 3)}
    assert parse_scrape_response(encode_scrape_response(files)).files == files
    assert parse_scrape_query("info_hash=" + "a" * 20) == [b"a" * 20]


def test_udp_requests_round_trip() -> None:
    for msg in (
        UdpConnectRequest(7),
        UdpAnnounceRequest(99, 8, REQ),
        UdpScrapeRequest(99, 9, (b"a" * 20, b"b" * 20)),
    ):
        assert decode_udp_request(encode_udp_request(msg)) == msg


@pytest.mark.parametrize("ipv6", [False, True])
def test_udp_responses_round_trip(ipv6: bool) -> None:
    peer = ("::1", 5) if ipv6 else ("127.0.0.1", 5)
    announce = UdpAnnounceResponse(
        3, AnnounceResponse(interval=60, peers=(peer,), complete=1, incomplete=2)
    )
    for msg in (
        UdpConnectResponse(1, 2**63),
        announce,
        UdpScrapeResponse(4, (ScrapeEntry(1, 2, 3),)),
        UdpErrorResponse(5, "nope"),
    ):
        assert decode_udp_response(encode_udp_response(msg, ipv6=ipv6), ipv6=ipv6) == msg


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 15,
        struct.pack(">QII", 1, 0, 1),
        struct.pack(">QII", 1, 1, 1),
        struct.pack(">QII", 1, 9, 1),
    ],
)
def test_malformed_udp_requests_raise_tracker_error(data: bytes) -> None:
    with pytest.raises(TrackerError):
        decode_udp_request(data)


def test_query_with_a_raw_non_latin1_character_raises_tracker_error() -> None:
    with pytest.raises(TrackerError, match="percent-encoded"):
        parse_announce_query("=\u0100")
