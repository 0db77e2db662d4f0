"""Compact peer and node info (BEP 5, 23, 32)."""

from __future__ import annotations

import pytest

from servent.codec.compact import (
    decode_ip,
    decode_nodes,
    decode_peer,
    decode_peers,
    encode_ip,
    encode_node,
    encode_nodes,
    encode_peer,
    encode_peers,
)
from servent.errors import CompactEncodingError


def test_ipv4_peer_round_trip() -> None:
    assert encode_peer(("1.2.3.4", 6881)) == bytes([1, 2, 3, 4, 0x1A, 0xE1])
    assert decode_peer(bytes([1, 2, 3, 4, 0x1A, 0xE1])) == ("1.2.3.4", 6881)


def test_ipv6_peer_round_trip() -> None:
    data = encode_peer(("2001:db8::1", 443))
    assert len(data) == 18
    assert decode_peer(data) == ("2001:db8::1", 443)


def test_peer_lists_round_trip() -> None:
    peers = [("10.0.0.1", 1), ("192.168.1.254", 65535)]
    assert decode_peers(encode_peers(peers)) == peers
    six = [("::1", 5), ("fe80::2", 6)]
    assert decode_peers(encode_peers(six), ipv6=True) == six


def test_node_lists_round_trip() -> None:
    nodes = [(bytes([i]) * 20, (f"10.0.0.{i}", 1000 + i)) for i in range(1, 9)]
    data = encode_nodes(nodes)
    assert len(data) == 8 * 26
    assert decode_nodes(data) == nodes
    six = [(b"\x07" * 20, ("2001:db8::7", 7))]
    assert decode_nodes(encode_nodes(six), ipv6=True) == six


@pytest.mark.parametrize("length", [0, 5, 7, 17, 19])
def test_peer_of_wrong_length_is_refused(length: int) -> None:
    with pytest.raises(CompactEncodingError):
        decode_peer(bytes(length))


def test_nodes_not_a_multiple_of_the_entry_size_are_refused() -> None:
    with pytest.raises(CompactEncodingError):
        decode_nodes(bytes(27))
    with pytest.raises(CompactEncodingError):
        decode_nodes(bytes(26), ipv6=True)
    with pytest.raises(CompactEncodingError):
        decode_peers(bytes(7))


@pytest.mark.parametrize("ip", ["", "1.2.3", "1.2.3.256", "host.example", "::g", "1.2.3.4.5"])
def test_bad_addresses_are_refused(ip: str) -> None:
    with pytest.raises(CompactEncodingError):
        encode_ip(ip)


def test_bad_port_and_node_id_are_refused() -> None:
    with pytest.raises(CompactEncodingError):
        encode_peer(("1.2.3.4", 70000))
    with pytest.raises(CompactEncodingError):
        encode_node(b"short", ("1.2.3.4", 1))
    with pytest.raises(CompactEncodingError):
        decode_ip(b"\x00" * 5)
