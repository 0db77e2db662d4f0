"""LSD (BEP 14) announce codec, rate limit, and own-cookie filtering."""

from __future__ import annotations

import pytest

from servent.errors import LsdError
from servent.net.lsd import (
    LsdAnnounce,
    LsdDriver,
    LsdRateLimit,
    decode_announce,
    encode_announce,
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
