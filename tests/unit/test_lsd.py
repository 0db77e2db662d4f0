"""LSD (BEP 14) announce codec, rate limit, and own-cookie filtering."""

from __future__ import annotations

import socket

import pytest

from servent.errors import ConfigError, LsdError
from servent.net.lsd import (
    LsdAnnounce,
    LsdDriver,
    LsdRateLimit,
    decode_announce,
    encode_announce,
    interface_index,
)

IH = bytes(range(20))


@pytest.mark.parametrize("ipv6", [False, True])
def test_round_trip(ipv6: bool) -> None:
    msg = LsdAnnounce(6881, (IH, b"\xff" * 20), "abc123")
    data = encode_announce(msg, ipv6=ipv6)
    assert data.startswith(b"BT-SEARCH * HTTP/1.1\r\n") and data.endswith(b"\r\n\r\n\r\n")
    assert decode_announce(data) == msg


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"GET / HTTP/1.1\r\n\r\n",
        b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\n\r\n",
        b"BT-SEARCH * HTTP/1.1\r\nPort: 0\r\nInfohash: " + b"a" * 40 + b"\r\n\r\n",
        b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nInfohash: " + b"g" * 40 + b"\r\n\r\n",
        b"BT-SEARCH * HTTP/1.1\r\nPort: 1\r\nno colon\r\n\r\n",
        b"BT-SEARCH * HTTP/1.1\r\n\xff\r\n",
        b"BT-SEARCH * HTTP/1.1\r\n" + b"x" * 2000,
    ],
)
def test_malformed_announces_raise_lsd_error(data: bytes) -> None:
    with pytest.raises(LsdError):
        decode_announce(data)


def test_rate_limit_one_announce_per_hash_per_interval() -> None:
    limit = LsdRateLimit(min_interval=60)
    assert limit.allow(IH, 0) and not limit.allow(IH, 59) and limit.allow(IH, 60)
    assert limit.allow(b"x" * 20, 1)


def test_our_own_announce_is_ignored_and_others_reported() -> None:
    found: list[tuple[bytes, tuple[str, int]]] = []
    driver = LsdDriver("127.0.0.1", lambda h, a: found.append((h, a)))
    driver.datagram_received(
        encode_announce(LsdAnnounce(1, (IH,), driver.cookie)), ("10.0.0.1", 6771)
    )
    driver.datagram_received(encode_announce(LsdAnnounce(2, (IH,), "other")), ("10.0.0.2", 6771))
    driver.datagram_received(b"garbage", ("10.0.0.3", 6771))
    assert found == [(IH, ("10.0.0.2", 2))]


def test_ipv6_announce_names_the_bracketed_ipv6_group_in_its_host_header() -> None:
    data = encode_announce(LsdAnnounce(6881, (IH,), "c"), ipv6=True)
    assert b"\r\nHost: [ff15::efc0:988f]:6771\r\n" in data
    assert b"\r\nHost: 239.192.152.143:6771\r\n" in encode_announce(LsdAnnounce(6881, (IH,)))


def test_ipv6_interface_given_by_name_or_index() -> None:
    lo = socket.if_nametoindex("lo")
    assert interface_index("lo") == lo == interface_index(str(lo)) == interface_index(lo)
    assert interface_index(None) == 0
    with pytest.raises(ConfigError, match="no network interface"):
        interface_index("no-such-if0")


def test_an_ipv6_announce_reports_the_sender_address() -> None:
    found: list[tuple[bytes, tuple[str, int]]] = []
    driver = LsdDriver("127.0.0.1", lambda h, a: found.append((h, a)), ipv6=True)
    data = encode_announce(LsdAnnounce(7000, (IH,), "other"), ipv6=True)
    driver.datagram_received(data, ("fd00::2", 6771))
    assert found == [(IH, ("fd00::2", 7000))]
