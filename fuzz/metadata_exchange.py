"""Fuzz the ``ut_metadata`` exchange (BEP 9): ``python -m fuzz.metadata_exchange --runs N``.

An input is a stream of messages, each framed by a 2-byte big-endian length.
Every message goes to a serving side (our info dictionary) and to a fetching
side that asked the sender for the pieces; whatever the messages say, the
fetcher may only ever produce metadata whose hash is the info-hash.
"""

from __future__ import annotations

import hashlib
import sys

from fuzz import run
from servent.errors import MetadataExchangeError
from servent.proto.metadata_exchange import (
    PIECE_SIZE,
    MetadataFetcher,
    MetadataServer,
    encode_data,
    encode_reject,
    encode_request,
)

INFO = b"d6:lengthi5e4:name1:x12:piece lengthi16384e6:pieces20:" + bytes(20) + b"e"
BIG_INFO = b"d4:name" + b"%d:" % (PIECE_SIZE + 100) + b"y" * (PIECE_SIZE + 100) + b"e"
INFO_HASHES = {INFO: hashlib.sha1(INFO).digest(), BIG_INFO: hashlib.sha1(BIG_INFO).digest()}


def _frames(*messages: bytes) -> bytes:
    return b"".join(len(m).to_bytes(2, "big") + m for m in messages)


CORPUS = [
    _frames(encode_request(0), encode_data(0, len(INFO), INFO)),
    _frames(encode_reject(0), encode_data(0, len(INFO), INFO)),
    _frames(
        encode_data(0, len(BIG_INFO), BIG_INFO[:PIECE_SIZE]),
        encode_data(1, len(BIG_INFO), BIG_INFO[PIECE_SIZE:]),
    ),
    _frames(encode_data(0, len(INFO), b"\x00" * len(INFO))),  # wrong bytes: a bad peer
]


def _split(data: bytes) -> list[bytes]:
    messages = []
    position = 0
    while position + 2 <= len(data):
        length = int.from_bytes(data[position : position + 2], "big")
        messages.append(data[position + 2 : position + 2 + length])
        position += 2 + length
    return messages


def target(data: bytes) -> None:
    big = len(data) > PIECE_SIZE
    info = BIG_INFO if big else INFO
    server = MetadataServer(info)
    fetcher = MetadataFetcher(info_hash_v1=INFO_HASHES[info])
    fetcher.add_peer("peer", len(info))
    now = 0.0
    for message in _split(data):
        now += 1.0
        while fetcher.next_request("peer", now) is not None:
            pass
        try:
            server.handle(message)
            done = fetcher.receive("peer", message, now)
        except MetadataExchangeError:
            continue  # a real session drops the peer; keep feeding to go deeper
        if done is not None and hashlib.sha1(done).digest() != INFO_HASHES[info]:
            raise AssertionError("fetcher accepted metadata that fails the info-hash")
    if fetcher.metadata is not None and fetcher.metadata != info:
        raise AssertionError("fetcher kept metadata that is not ours")
    if fetcher.bad_peers and fetcher.metadata is not None:
        raise AssertionError("a peer was marked bad although the metadata verified")


if __name__ == "__main__":
    sys.exit(run("metadata_exchange", target, CORPUS))
