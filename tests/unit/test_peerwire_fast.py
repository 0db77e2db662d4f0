"""BEP 6 allowed-fast set generation against the BEP's own example."""

from __future__ import annotations

import pytest

from servent.proto.peerwire.fast import allowed_fast_set

# Every test runs on both receive paths (C where built, and Python).
pytestmark = pytest.mark.usefixtures("both_scan_paths")

BEP6_HASH = bytes.fromhex("aa" * 20)


def test_seven_piece_set_matches_bep6_example() -> None:
    assert allowed_fast_set("80.4.4.200", BEP6_HASH, 1313, 7) == [
        1059,
        431,
        808,
        1217,
        287,
        376,
        1188,
    ]


def test_nine_piece_set_extends_the_seven_piece_set() -> None:
    assert allowed_fast_set("80.4.4.200", BEP6_HASH, 1313, 9) == [
        1059,
        431,
        808,
        1217,
        287,
        376,
        1188,
        353,
        508,
    ]


def test_same_slash24_gives_same_set() -> None:
    assert allowed_fast_set("80.4.4.1", BEP6_HASH, 1313) == allowed_fast_set(
        "80.4.4.254", BEP6_HASH, 1313
    )
    assert allowed_fast_set("::ffff:80.4.4.9", BEP6_HASH, 1313) == allowed_fast_set(
        "80.4.4.200", BEP6_HASH, 1313
    )


def test_small_torrent_gives_every_piece_once() -> None:
    assert sorted(allowed_fast_set("10.0.0.1", BEP6_HASH, 3, 10)) == [0, 1, 2]
    assert allowed_fast_set("10.0.0.1", BEP6_HASH, 0) == []


def test_ipv6_peer_gets_a_stable_set() -> None:
    first = allowed_fast_set("2001:db8::1", BEP6_HASH, 500)
    assert first == allowed_fast_set("2001:db8::2", BEP6_HASH, 500)
    assert len(set(first)) == 10
