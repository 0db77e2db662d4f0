"""Magnet links: BEP 9 v1, BEP 52 v2 (btmh), x.pe peers, ws, so (BEP 53)."""

from __future__ import annotations

import base64

import pytest

from servent.codec.magnet import Magnet, parse_magnet
from servent.errors import MagnetError

V1 = bytes(range(20))
V2 = bytes(range(32))


def test_v1_hex_with_name_trackers_peers_and_web_seeds() -> None:
    uri = (
        f"magnet:?xt=urn:btih:{V1.hex().upper()}&dn=My+Show%20%C3%9C"
        "&tr=http%3A%2F%2Ft.example%2Fannounce&tr.1=udp://u.example:80"
        "&x.pe=127.0.0.1:6881&x.pe=[::1]:51413&ws=http://w.example/f&so=0,2,4-6&xl=10&foo=bar"
    )
    magnet = parse_magnet(uri)
    assert magnet.info_hash_v1 == V1 and magnet.info_hash_v2 is None
    assert magnet.display_name == "My Show Ü"
    assert magnet.trackers == ("http://t.example/announce", "udp://u.example:80")
    assert magnet.peers == (("127.0.0.1", 6881), ("::1", 51413))
    assert magnet.web_seeds == ("http://w.example/f",)
    assert magnet.select_only == (0, 2, 4, 5, 6)
    assert magnet.wire_info_hash == V1
    assert parse_magnet(magnet.to_uri()) == magnet


def test_v1_base32_hash() -> None:
    uri = "magnet:?xt=urn:btih:" + base64.b32encode(V1).decode()
    assert parse_magnet(uri).info_hash_v1 == V1


def test_v2_only_and_hybrid() -> None:
    v2_only = parse_magnet(f"magnet:?xt=urn:btmh:1220{V2.hex()}")
    assert v2_only.info_hash_v2 == V2 and v2_only.info_hash_v1 is None
    assert v2_only.wire_info_hash == V2[:20]
    hybrid = parse_magnet(f"MAGNET:?xt=urn:btih:{V1.hex()}&xt=urn:btmh:1220{V2.hex()}")
    assert (hybrid.info_hash_v1, hybrid.info_hash_v2) == (V1, V2)


def test_format_is_canonical() -> None:
    magnet = Magnet(info_hash_v1=V1, info_hash_v2=V2, display_name="a b&c",
                    trackers=("http://t/announce?x=1&y=2",), peers=(("10.0.0.1", 1),),
                    select_only=(3, 1, 2, 7))
    uri = magnet.to_uri()
    assert uri.startswith(f"magnet:?xt=urn:btih:{V1.hex()}&xt=urn:btmh:1220{V2.hex()}&dn=a%20b%26c")
    assert "so=1-3,7" in uri
    assert parse_magnet(uri) == Magnet(V1, V2, "a b&c", ("http://t/announce?x=1&y=2",),
                                       (("10.0.0.1", 1),), (), (1, 2, 3, 7))


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("http://example.com", "start with"),
        ("magnet:?dn=x", "no 'xt"),
        ("magnet:?xt=urn:btih:abcd", "40 or 32"),
        ("magnet:?xt=urn:btih:" + "g" * 40, "hexadecimal"),
        ("magnet:?xt=urn:btih:" + "1" * 32, "base32"),
        ("magnet:?xt=urn:btmh:1114" + "00" * 20, "1220"),
        ("magnet:?xt=urn:sha1:abc", "unsupported"),
        (f"magnet:?xt=urn:btih:{V1.hex()}&xt=urn:btih:{bytes(20).hex()}", "two different"),
        (f"magnet:?xt=urn:btih:{V1.hex()}&x.pe=127.0.0.1", "host:port"),
        (f"magnet:?xt=urn:btih:{V1.hex()}&x.pe=127.0.0.1:0", "port"),
        (f"magnet:?xt=urn:btih:{V1.hex()}&x.pe=[::1:80", "IPv6"),
        (f"magnet:?xt=urn:btih:{V1.hex()}&so=3-1", "backwards"),
        (f"magnet:?xt=urn:btih:{V1.hex()}&so=a", "'N' or 'N-M'"),
        (f"magnet:?xt=urn:btih:{V1.hex()}&so=0-999999999", "more than"),
        (f"magnet:?xt=urn:btih:{V1.hex()}&dn=%FF", "UTF-8"),
        (f"magnet:?xt=urn:btih:{V1.hex()}&dn", "no value"),
        ("magnet:?" + "a=b&" * 2000, "parameters"),
        ("magnet:?" + "a" * 70000, "longer"),
    ],
)
def test_malformed_magnet_names_the_problem(uri: str, message: str) -> None:
    with pytest.raises(MagnetError, match=message):
        parse_magnet(uri)


def test_a_magnet_without_a_hash_cannot_be_formatted() -> None:
    with pytest.raises(MagnetError):
        Magnet().to_uri()


def test_plus_sign_in_a_value_survives_a_round_trip() -> None:
    # Regression: '+' was left unescaped when formatting and read back as a space.
    magnet = Magnet(info_hash_v1=V1, display_name="a+b c", trackers=("http://t/x+y",))
    assert parse_magnet(magnet.to_uri()) == magnet
