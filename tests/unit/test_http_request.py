"""The tracker's HTTP request-head codec: keep-alive rules and hostile heads."""

from __future__ import annotations

import pytest

from servent.codec.http_request import MAX_REQUEST_HEAD, encode_response, parse_request_head
from servent.errors import TrackerError


def test_http11_keeps_alive_unless_closed_and_http10_only_when_asked() -> None:
    head = parse_request_head(b"GET /announce?info_hash=%FF HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (head.method, head.path, head.query) == ("GET", "/announce", "info_hash=%FF")
    assert head.keep_alive and not head.has_body
    assert not parse_request_head(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive
    assert not parse_request_head(b"GET / HTTP/1.0\r\n\r\n").keep_alive
    assert parse_request_head(b"GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n").keep_alive
    assert parse_request_head(b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\n").has_body


@pytest.mark.parametrize(
    "head",
    [
        b"GET /announce\r\n\r\n",
        b"GET announce HTTP/1.1\r\n\r\n",
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"A: b\r\n" * 65 + b"\r\n",
        b"GET /" + b"a" * MAX_REQUEST_HEAD + b" HTTP/1.1\r\n\r\n",
    ],
)
def test_malformed_heads_raise_a_tracker_error(head: bytes) -> None:
    with pytest.raises(TrackerError):
        parse_request_head(head)


def test_response_carries_length_and_connection() -> None:
    raw = encode_response(200, "OK", b"d5:helloe", keep_alive=False)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and raw.endswith(b"\r\n\r\nd5:helloe")
    assert b"Content-Length: 9\r\n" in raw and b"Connection: close\r\n" in raw
