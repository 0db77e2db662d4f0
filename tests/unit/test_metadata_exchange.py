"""ut_metadata: fetching, verification (v1 and v2), bad peers, serving, bounds."""

from __future__ import annotations

import hashlib

import pytest

from servent.errors import MetadataExchangeError
from servent.proto.metadata_exchange import (
    MAX_METADATA_SIZE,
    PIECE_SIZE,
    REQUEST_TIMEOUT,
    MetadataFetcher,
    MetadataServer,
    decode_message,
    encode_data,
    encode_reject,
    encode_request,
)

INFO = b"d4:name4:test" + b"1:x" * 20000 + b"e"  # about 60 KiB: 4 pieces


def fetch_from(fetcher: MetadataFetcher, peer: str, server: MetadataServer) -> bytes | None:
    result = None
    for _ in range(100):
        request = fetcher.next_request(peer, 0)
        if request is None:
            break
        reply = server.handle(request)
        assert reply is not None
        result = fetcher.receive(peer, reply, 0) or result
    return result


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_fetch_assembles_and_verifies_the_info_dictionary(version: str) -> None:
    hashes = (
        {"info_hash_v1": hashlib.sha1(INFO).digest()}
        if version == "v1"
        else {"info_hash_v2": hashlib.sha256(INFO).digest()}
    )
    fetcher = MetadataFetcher(**hashes)
    server = MetadataServer(INFO)
    assert fetcher.add_peer("a", server.metadata_size)
    assert fetch_from(fetcher, "a", server) == INFO
    assert fetcher.metadata == INFO and fetcher.next_request("a", 0) is None


def test_peer_with_bad_metadata_is_marked_and_a_good_peer_completes() -> None:
    fetcher = MetadataFetcher(info_hash_v1=hashlib.sha1(INFO).digest())
    liar = MetadataServer(INFO.replace(b"test", b"evil"))
    assert fetcher.add_peer("liar", liar.metadata_size)
    assert fetch_from(fetcher, "liar", liar) is None
    assert fetcher.bad_peers == {"liar"} and not fetcher.add_peer("liar", len(INFO))
    assert fetcher.add_peer("good", len(INFO))
    assert fetch_from(fetcher, "good", MetadataServer(INFO)) == INFO


def test_reject_moves_the_piece_to_another_peer_and_timeouts_re_request() -> None:
    fetcher = MetadataFetcher(info_hash_v1=hashlib.sha1(INFO).digest())
    fetcher.add_peer("a", len(INFO))
    fetcher.add_peer("b", len(INFO))
    assert decode_message(fetcher.next_request("a", 0) or b"").piece == 0
    fetcher.receive("a", encode_reject(0), 1)
    assert decode_message(fetcher.next_request("b", 1) or b"").piece == 0
    assert decode_message(fetcher.next_request("a", 1) or b"").piece == 1
    # piece 0 is in flight at b; after the timeout someone else may ask again
    assert decode_message(fetcher.next_request("b", 2 + REQUEST_TIMEOUT) or b"").piece == 0


def test_oversized_metadata_is_refused_at_the_handshake() -> None:
    fetcher = MetadataFetcher(info_hash_v1=b"x" * 20)
    assert not fetcher.add_peer("a", MAX_METADATA_SIZE + 1)
    assert not fetcher.add_peer("a", 0)


def test_piece_of_the_wrong_length_raises() -> None:
    fetcher = MetadataFetcher(info_hash_v1=b"x" * 20)
    fetcher.add_peer("a", len(INFO))
    fetcher.next_request("a", 0)
    with pytest.raises(MetadataExchangeError, match="bytes, not"):
        fetcher.receive("a", encode_data(0, len(INFO), b"short"), 0)
    with pytest.raises(MetadataExchangeError, match="total_size differs"):
        fetcher.receive("a", encode_data(0, 99, b"x" * 99), 0)


def test_unsolicited_data_is_ignored() -> None:
    fetcher = MetadataFetcher(info_hash_v1=b"x" * 20)
    fetcher.add_peer("a", 10)
    assert fetcher.receive("a", encode_data(0, 10, b"0123456789"), 0) is None
    assert fetcher.metadata is None


def test_server_rejects_pieces_beyond_the_end() -> None:
    server = MetadataServer(b"d1:ai1ee")
    assert decode_message(server.handle(encode_request(5)) or b"").msg_type == 2
    reply = decode_message(server.handle(encode_request(0)) or b"")
    assert reply.data == b"d1:ai1ee" and reply.total_size == 8


@pytest.mark.parametrize(
    "payload",
    [b"", b"x", b"le", b"d8:msg_typei7e5:piecei0ee", b"d8:msg_typei0e5:piecei-1ee",
     b"d8:msg_typei1e5:piecei0e10:total_sizei999999999ee", b"d" + b"x" * (PIECE_SIZE + 2000)],
)  # fmt: skip
def test_malformed_messages_raise(payload: bytes) -> None:
    with pytest.raises(MetadataExchangeError):
        decode_message(payload)
