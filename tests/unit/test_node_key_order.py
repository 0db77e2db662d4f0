"""Low-order and non-canonical Ed25519 keys are refused as node keys.

The refused encodings are checked here independently: each is decoded to a
curve point with the RFC 8032 formulas and multiplied by 8, which must give the
neutral element (0, 1) exactly for the points of the torsion subgroup.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.codec.node_id import (
    NodeIdError,
    check_public_key,
    format_node_id,
    is_usable_public_key,
    parse_node_id,
)
from servent.proto.channel.errors import ChannelAuthError
from servent.proto.channel.noise import verify_payload

P = 2**255 - 19
D = (-121665 * pow(121666, P - 2, P)) % P
SQRT_MINUS_1 = pow(2, (P - 1) // 4, P)


def _decode(encoded: bytes) -> tuple[int, int] | None:
    """RFC 8032 section 5.1.3 point decoding (None when no point has this y)."""
    y = int.from_bytes(encoded, "little") & ((1 << 255) - 1)
    sign = encoded[31] >> 7
    if y >= P:
        return None
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = (u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P)) % P
    if (v * x * x - u) % P != 0:
        x = (x * SQRT_MINUS_1) % P
        if (v * x * x - u) % P != 0:
            return None
    if x == 0 and sign:
        return None
    return (P - x if x & 1 != sign else x), y


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, P - 2, P) % P
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, P - 2, P) % P
    return x3, y3


def _times8(point: tuple[int, int]) -> tuple[int, int]:
    for _ in range(3):
        point = _add(point, point)
    return point


def _encode(y: int, sign: int = 0) -> bytes:
    return (y | (sign << 255)).to_bytes(32, "little")


ORDER8_Y = int.from_bytes(
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little"
)
LOW_ORDER = [_encode(y, s) for y in (0, 1, P - 1, ORDER8_Y, P - ORDER8_Y) for s in (0, 1)]


@pytest.mark.parametrize("key", LOW_ORDER, ids=lambda k: k.hex()[:8] + k.hex()[-2:])
def test_every_torsion_point_is_refused(key: bytes) -> None:
    point = _decode(key)
    if point is not None:  # some sign variants do not decode at all (x = 0 with the sign set)
        assert _times8(point) == (0, 1)
    assert not is_usable_public_key(key)
    with pytest.raises(NodeIdError, match="low-order"):
        check_public_key(key)
    with pytest.raises(NodeIdError, match="low-order"):
        parse_node_id(format_node_id(key))


def test_the_torsion_subgroup_has_eight_points_and_all_are_listed() -> None:
    points = {_decode(key) for key in LOW_ORDER} - {None}
    assert len(points) == 8


@pytest.mark.parametrize("y", [P, P + 1, P + 5, 2**255 - 1])
def test_non_canonical_encodings_are_refused(y: int) -> None:
    assert not is_usable_public_key(_encode(y))


def test_real_keys_are_usable() -> None:
    for seed in range(20):
        key = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
        raw = key.public_key().public_bytes_raw()
        assert _decode(raw) is not None and _times8(_decode(raw)) != (0, 1)  # type: ignore[arg-type]
        assert check_public_key(raw) == raw
        assert parse_node_id(format_node_id(raw)) == raw


def test_a_channel_handshake_naming_a_low_order_identity_is_refused() -> None:
    payload = _encode(1) + bytes(64)  # the neutral element "signs" anything
    with pytest.raises(ChannelAuthError, match="low-order"):
        verify_payload(payload, bytes(32))
