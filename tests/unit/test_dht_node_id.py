"""XOR distance and BEP 42 node IDs (test vectors from the BEP)."""

from __future__ import annotations

import random

import pytest

from servent.proto.dht.node_id import (
    crc32c,
    distance,
    generate_secure_id,
    is_exempt_ip,
    is_secure_id,
)

BEP42_VECTORS = [
    ("124.31.75.21", "5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401"),
    ("21.75.31.124", "5a3ce9c14e7a08645677bbd1cfe7d8f956d53216"),
    ("65.23.51.170", "a5d43220bc8f112a3d426c84764f8c2a1150e616"),
    ("84.124.73.14", "1b0321dd1bb1fe518101ceef99462b947a01ff41"),
    ("43.213.53.83", "e56f6cbf5b7c4be0237986d5243b87aa6d51305a"),
]


def test_crc32c_known_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283


@pytest.mark.parametrize(("ip", "node_id"), BEP42_VECTORS)
def test_bep42_vectors_verify(ip: str, node_id: str) -> None:
    assert is_secure_id(bytes.fromhex(node_id), ip)
    assert not is_secure_id(bytes.fromhex(node_id), "8.8.8.8")


@pytest.mark.parametrize("ip", ["8.8.4.4", "203.0.113.9", "2001:4860:4860::8888"])
def test_generated_ids_verify_for_their_ip_only(ip: str) -> None:
    rng = random.Random(ip)
    for _ in range(20):
        node_id = generate_secure_id(ip, rng)
        assert len(node_id) == 20
        assert is_secure_id(node_id, ip)
    assert not is_secure_id(generate_secure_id(ip, rng), "1.1.1.1")


@pytest.mark.parametrize("ip", ["127.0.0.1", "10.1.2.3", "192.168.0.9", "172.16.5.5", "::1"])
def test_local_addresses_are_exempt(ip: str) -> None:
    assert is_exempt_ip(ip)
    assert is_secure_id(b"\xff" * 20, ip)


def test_malformed_ids_and_ips_are_not_secure() -> None:
    assert not is_secure_id(b"\x00" * 19, "8.8.8.8")
    assert not is_secure_id(b"\x00" * 20, "not-an-ip")


def test_distance_is_xor() -> None:
    a = bytes(19) + b"\x05"
    b = bytes(19) + b"\x03"
    assert distance(a, b) == 6
    assert distance(a, a) == 0
