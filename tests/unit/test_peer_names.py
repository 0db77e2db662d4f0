"""Client names shown in the peers table, from BitTorrent peer ids (hostile bytes too)."""

from __future__ import annotations

import pytest

from servent.node.peer_names import client_name


@pytest.mark.parametrize(
    ("peer_id", "name"),
    [
        (b"-SV0100-abcdefghijkl", "servent 0.1.0.0"),
        (b"-LT2110-abcdefghijkl", "libtorrent 2.1.1.0"),
        (b"-qB4650-abcdefghijkl", "qBittorrent 4.6.5.0"),
        (b"-ZZ1234-abcdefghijkl", "ZZ 1.2.3.4"),
        (b"A2-1-36-0-abcdefghij", "aria2 1.36.0"),
        (b"M7-2-3--abcdefghijkl", ""),
        (b"", ""),
        (b"-\xff\xfe\x00\x01\x02\x03-" + bytes(12), "\ufffd\ufffd"),
    ],
)
def test_client_name(peer_id: bytes, name: str) -> None:
    assert client_name(peer_id) == name
