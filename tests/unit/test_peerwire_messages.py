"""Peer wire message codec: exact frames, round trips, malformed payloads."""

from __future__ import annotations

import pytest

from servent.errors import MalformedMessageError
from servent.proto.peerwire.handshake import (
    RESERVED_EXTENSION,
    RESERVED_FAST,
    RESERVED_V2,
    Handshake,
    make_reserved,
    parse_handshake,
)
from servent.proto.peerwire.messages import (
    AllowedFast,
    Cancel,
    Choke,
    Extended,
    Hashes,
    HashReject,
    HashRequest,
    Have,
    HaveAll,
    HaveBitfield,
    HaveNone,
    Interested,
    KeepAlive,
    NotInterested,
    Piece,
    Port,
    RejectRequest,
    Request,
    SuggestPiece,
    Unchoke,
    UnknownMessage,
    bitfield_from_indices,
    bitfield_indices,
    check_bitfield,
    decode_message,
    encode_message,
)

ROOT = bytes(range(32))
ALL_MESSAGES = [
    KeepAlive(),
    Choke(),
    Unchoke(),
    Interested(),
    NotInterested(),
    Have(7),
    HaveBitfield(b"\xff\x80"),
    Request(1, 16384, 16384),
    Piece(2, 0, b"data" * 10),
    Cancel(1, 16384, 16384),
    Port(6881),
    SuggestPiece(3),
    HaveAll(),
    HaveNone(),
    RejectRequest(4, 0, 16384),
    AllowedFast(5),
    Extended(0, b"d1:md11:ut_metadatai1eee"),
    HashRequest(ROOT, 0, 0, 512, 3),
    Hashes(ROOT, 0, 0, 2, 1, bytes(96)),
    HashReject(ROOT, 0, 0, 512, 3),
    UnknownMessage(99, b"xyz"),
]


@pytest.mark.parametrize("message", ALL_MESSAGES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(message: object) -> None:
    frame = encode_message(message)  # type: ignore[arg-type]
    length = int.from_bytes(frame[:4], "big")
    assert length == len(frame) - 4
    assert decode_message(frame[4:]) == message


def test_known_frames_match_bep3_layout() -> None:
    assert encode_message(Interested()) == b"\x00\x00\x00\x01\x02"
    assert encode_message(Have(258)) == b"\x00\x00\x00\x05\x04\x00\x00\x01\x02"
    assert encode_message(Request(1, 2, 3)) == (
        b"\x00\x00\x00\x0d\x06\x00\x00\x00\x01\x00\x00\x00\x02\x00\x00\x00\x03"
    )
    assert encode_message(HaveAll()) == b"\x00\x00\x00\x01\x0e"
    assert encode_message(Port(0x1AE1)) == b"\x00\x00\x00\x03\x09\x1a\xe1"
    assert encode_message(HashRequest(ROOT, 0, 0, 2, 0))[:5] == b"\x00\x00\x00\x31\x15"


@pytest.mark.parametrize(
    "body",
    [
        b"\x00x",  # choke with payload
        b"\x04\x00\x00\x01",  # short have
        b"\x06" + bytes(13),  # long request
        b"\x07\x00\x00",  # piece without begin
        b"\x09\x00",  # short port
        b"\x14",  # extended without id
        b"\x15" + bytes(47),  # short hash request
        b"\x16" + bytes(48 + 31),  # hashes not a multiple of 32
    ],
)
def test_malformed_payload_sizes_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedMessageError):
        decode_message(body)


def test_encoding_refuses_out_of_range_fields() -> None:
    with pytest.raises(ValueError):
        encode_message(Have(2**32))
    with pytest.raises(ValueError):
        encode_message(Port(70000))


def test_bitfield_helpers_round_trip_and_check_spare_bits() -> None:
    bits = bitfield_from_indices({0, 3, 9}, 10)
    assert bits == b"\x90\x40"
    assert bitfield_indices(bits, 10) == [0, 3, 9]
    check_bitfield(bits, 10)
    with pytest.raises(MalformedMessageError):
        check_bitfield(b"\x90\x41", 10)
    with pytest.raises(MalformedMessageError):
        check_bitfield(b"\x90", 10)


def test_handshake_round_trip_with_reserved_bits() -> None:
    reserved = make_reserved(RESERVED_FAST, RESERVED_EXTENSION, RESERVED_V2)
    assert reserved == b"\x00\x00\x00\x00\x00\x10\x00\x14"
    handshake = Handshake(reserved, b"i" * 20, b"p" * 20)
    parsed = parse_handshake(handshake.encode())
    assert parsed == handshake
    assert parsed.supports_fast and parsed.supports_extensions and parsed.supports_v2
    assert not parsed.supports_dht


def test_aria2_hybrid_info_hash_alias_drops_empty_keys() -> None:
    # aria2 1.36 announced an unknown info-hash for libtorrent hybrid torrents:
    # it hashes the info dictionary without the "" keys of the v2 file tree.
    import hashlib

    from servent.codec.bencode import encode
    from servent.proto.peerwire.handshake import aria2_info_hash

    hybrid = {
        b"file tree": {b"f.bin": {b"": {b"length": 5, b"pieces root": bytes(32)}}},
        b"length": 5,
        b"meta version": 2,
        b"name": b"f.bin",
        b"piece length": 16384,
        b"pieces": bytes(20),
    }
    stripped = dict(hybrid)
    stripped[b"file tree"] = {b"f.bin": {}}
    assert aria2_info_hash(encode(hybrid)) == hashlib.sha1(encode(stripped)).digest()
    v1_only = {b"length": 5, b"name": b"f", b"piece length": 16384, b"pieces": bytes(20)}
    assert aria2_info_hash(encode(v1_only)) is None
