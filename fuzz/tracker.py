"""Fuzz the tracker codecs (BEP 3, 15, 23, 48): ``python -m fuzz.tracker --runs N``.

The first byte of an input picks the parser (HTTP announce/scrape responses,
the built-in tracker's query parsers, UDP requests and responses over IPv4
and IPv6, the built-in tracker's HTTP request heads); the rest is that
parser's input. What a parser accepts must
encode and parse back to the same value where the codec has an encoder.
"""

from __future__ import annotations

import sys

from fuzz import run
from servent.codec.http_request import parse_request_head
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
    scrape_query,
)

IH = bytes(range(20))
REQUEST = AnnounceRequest(IH, b"-SV0001-abcdefghijkl", 6881, 10, 20, 30, "started", 50, True, 7)


def _with(selector: int, body: bytes) -> bytes:
    return bytes([selector]) + body


CORPUS = [
    _with(0, encode_announce_response(AnnounceResponse(1800, (("10.0.0.1", 6881),), 60, 3, 4))),
    _with(0, encode_announce_response(AnnounceResponse(900, (("::1", 1),)), compact=False)),
    _with(0, encode_failure("not registered")),
    _with(1, encode_scrape_response({IH: ScrapeEntry(1, 2, 3)})),
    _with(2, announce_url("http://t/announce", REQUEST).split("?", 1)[1].encode()),
    _with(3, scrape_query("http://t/scrape", [IH, IH[::-1]]).split("?", 1)[1].encode()),
    _with(4, encode_udp_request(UdpConnectRequest(5))),
    _with(4, encode_udp_request(UdpAnnounceRequest(0x41727101980, 6, REQUEST))),
    _with(4, encode_udp_request(UdpScrapeRequest(1, 2, (IH,)))),
    _with(5, encode_udp_response(UdpConnectResponse(5, 99))),
    _with(5, encode_udp_response(UdpAnnounceResponse(6, AnnounceResponse(60, (("1.2.3.4", 5),))))),
    _with(5, encode_udp_response(UdpScrapeResponse(7, (ScrapeEntry(1, 2, 3),)))),
    _with(5, encode_udp_response(UdpErrorResponse(8, "go away"))),
    _with(6, encode_udp_response(UdpAnnounceResponse(6, AnnounceResponse(60, (("::2", 5),))),
                                 ipv6=True)),
    _with(7, b"GET /announce?info_hash=%01 HTTP/1.1\r\nConnection: close\r\n\r\n"),
]  # fmt: skip


def target(data: bytes) -> None:
    if not data:
        return
    selector, body = data[0] % 8, data[1:]
    if selector == 0:
        parse_announce_response(body)
    elif selector == 1:
        parsed = parse_scrape_response(body)
        if parse_scrape_response(encode_scrape_response(parsed.files)) != parsed:
            raise AssertionError("scrape response does not survive a round trip")
    elif selector == 2:
        parse_announce_query(body.decode("latin-1"))
    elif selector == 3:
        parse_scrape_query(body.decode("latin-1"))
    elif selector == 4:
        request = decode_udp_request(body)
        if decode_udp_request(encode_udp_request(request)) != request:
            raise AssertionError("UDP request does not survive a round trip")
    elif selector == 7:
        parse_request_head(body)
    else:
        ipv6 = selector == 6
        response = decode_udp_response(body, ipv6=ipv6)
        if decode_udp_response(encode_udp_response(response, ipv6=ipv6), ipv6=ipv6) != response:
            raise AssertionError("UDP response does not survive a round trip")


if __name__ == "__main__":
    sys.exit(run("tracker", target, CORPUS))
