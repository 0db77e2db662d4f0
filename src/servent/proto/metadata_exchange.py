"""Metadata exchange (BEP 9, ``ut_metadata``): fetch and serve the info dictionary.

Sans-IO and independent of the peer-wire connection: it takes and returns the
*payload* of ``ut_metadata`` extension messages (the bytes after the BEP 10
extended message id), so it plugs into any extension registry.  Peers are
opaque hashable keys chosen by the caller.
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable
from dataclasses import dataclass

from servent.codec import bencode
from servent.errors import DecodeError, MetadataExchangeError

PIECE_SIZE = 16 * 1024
MAX_METADATA_SIZE = 16 * 1024 * 1024
REQUEST_TIMEOUT = 30.0
MSG_REQUEST, MSG_DATA, MSG_REJECT = 0, 1, 2
_LIMITS = bencode.Limits(max_length=PIECE_SIZE + 1024, max_depth=2, max_values=16)


@dataclass(frozen=True, slots=True)
class MetadataMessage:
    msg_type: int
    piece: int
    total_size: int | None = None
    data: bytes = b""


def encode_request(piece: int) -> bytes:
    return bencode.encode({b"msg_type": MSG_REQUEST, b"piece": piece})


def encode_reject(piece: int) -> bytes:
    return bencode.encode({b"msg_type": MSG_REJECT, b"piece": piece})


def encode_data(piece: int, total_size: int, data: bytes) -> bytes:
    head = bencode.encode({b"msg_type": MSG_DATA, b"piece": piece, b"total_size": total_size})
    return head + data


def decode_message(payload: bytes) -> MetadataMessage:
    """Decode one ``ut_metadata`` payload (dictionary, then raw data for ``data``)."""
    if len(payload) > PIECE_SIZE + 1024:
        raise MetadataExchangeError(f"ut_metadata message of {len(payload)} bytes")
    try:
        head, end = bencode.decode_prefix(payload, _LIMITS)
    except DecodeError as exc:
        raise MetadataExchangeError(f"ut_metadata header is not bencoded: {exc}") from exc
    if not isinstance(head, dict):
        raise MetadataExchangeError("ut_metadata header is not a dictionary")
    msg_type, piece, total = head.get(b"msg_type"), head.get(b"piece"), head.get(b"total_size")
    if msg_type not in (MSG_REQUEST, MSG_DATA, MSG_REJECT) or not isinstance(msg_type, int):
        raise MetadataExchangeError(f"unknown ut_metadata msg_type {msg_type!r}")
    if not isinstance(piece, int) or not 0 <= piece < MAX_METADATA_SIZE // PIECE_SIZE:
        raise MetadataExchangeError(f"ut_metadata piece {piece!r} out of range")
    if msg_type != MSG_DATA:
        return MetadataMessage(msg_type, piece)
    if not isinstance(total, int) or not 0 < total <= MAX_METADATA_SIZE:
        raise MetadataExchangeError(f"ut_metadata total_size {total!r} out of range")
    return MetadataMessage(msg_type, piece, total, payload[end:])


def _piece_count(size: int) -> int:
    return (size + PIECE_SIZE - 1) // PIECE_SIZE


class MetadataServer:
    """Answers requests for our own info dictionary."""

    def __init__(self, info_bytes: bytes) -> None:
        self.info_bytes = info_bytes

    @property
    def metadata_size(self) -> int:
        """The ``metadata_size`` to put into our BEP 10 handshake."""
        return len(self.info_bytes)

    def handle(self, payload: bytes) -> bytes | None:
        """Reply payload for a request (data or reject); None for other messages."""
        msg = decode_message(payload)
        if msg.msg_type != MSG_REQUEST:
            return None
        start = msg.piece * PIECE_SIZE
        if start >= len(self.info_bytes):
            return encode_reject(msg.piece)
        chunk = self.info_bytes[start : start + PIECE_SIZE]
        return encode_data(msg.piece, len(self.info_bytes), chunk)


class MetadataFetcher:
    """Collects the info dictionary from peers, verifies it against the info-hash.

    Feed it with :meth:`add_peer` (from a peer's extension handshake),
    :meth:`next_request` (payload to send to that peer, or None) and
    :meth:`receive`.  When :attr:`metadata` is set, the work is done; peers in
    :attr:`bad_peers` sent data that failed the hash and should be dropped.
    """

    def __init__(
        self,
        *,
        info_hash_v1: bytes | None = None,
        info_hash_v2: bytes | None = None,
        max_size: int = MAX_METADATA_SIZE,
    ) -> None:
        if info_hash_v1 is None and info_hash_v2 is None:
            raise ValueError("need a v1 or v2 info-hash")
        self._v1 = info_hash_v1
        self._v2 = info_hash_v2
        self._max_size = min(max_size, MAX_METADATA_SIZE)
        self._size: int | None = None
        self._pieces: dict[int, tuple[bytes, Hashable]] = {}
        self._in_flight: dict[int, tuple[Hashable, float]] = {}
        self._peers: dict[Hashable, set[int]] = {}  # peer -> pieces it rejected
        self.metadata: bytes | None = None
        self.bad_peers: set[Hashable] = set()

    def add_peer(self, peer: Hashable, metadata_size: int | None) -> bool:
        """Register a peer that offers ut_metadata; False if it is unusable."""
        if peer in self.bad_peers or metadata_size is None:
            return False
        if not 0 < metadata_size <= self._max_size:
            return False
        if self._size is None:
            self._size = metadata_size
        elif metadata_size != self._size:
            return False
        self._peers.setdefault(peer, set())
        return True

    def remove_peer(self, peer: Hashable) -> None:
        self._peers.pop(peer, None)
        for piece in [p for p, (who, _) in self._in_flight.items() if who == peer]:
            del self._in_flight[piece]

    def next_request(self, peer: Hashable, now: float) -> bytes | None:
        """A request payload for ``peer``, or None if nothing is left for it."""
        if self.metadata is not None or self._size is None or peer not in self._peers:
            return None
        rejected = self._peers[peer]
        for piece in range(_piece_count(self._size)):
            if piece in self._pieces or piece in rejected:
                continue
            flight = self._in_flight.get(piece)
            if flight is not None and now - flight[1] < REQUEST_TIMEOUT:
                continue
            self._in_flight[piece] = (peer, now)
            return encode_request(piece)
        return None

    def receive(self, peer: Hashable, payload: bytes, now: float) -> bytes | None:
        """Handle a message from ``peer``; returns the metadata once it is complete.

        Raises MetadataExchangeError for a malformed message (drop the peer).
        """
        msg = decode_message(payload)
        if peer not in self._peers or self._size is None or self.metadata is not None:
            return None
        if msg.msg_type == MSG_REJECT:
            self._peers[peer].add(msg.piece)
            self._in_flight.pop(msg.piece, None)
            return None
        if msg.msg_type != MSG_DATA:
            return None
        if msg.total_size != self._size:
            raise MetadataExchangeError("ut_metadata total_size differs from the handshake")
        count = _piece_count(self._size)
        if msg.piece >= count:
            raise MetadataExchangeError(f"ut_metadata piece {msg.piece} beyond {count}")
        expected = PIECE_SIZE if msg.piece < count - 1 else self._size - PIECE_SIZE * (count - 1)
        if len(msg.data) != expected:
            raise MetadataExchangeError(
                f"ut_metadata piece of {len(msg.data)} bytes, not {expected}"
            )
        flight = self._in_flight.get(msg.piece)
        if flight is None or flight[0] != peer:
            return None  # unsolicited or late: ignore
        del self._in_flight[msg.piece]
        self._pieces[msg.piece] = (msg.data, peer)
        if len(self._pieces) == count:
            return self._verify()
        return None

    def _verify(self) -> bytes | None:
        data = b"".join(self._pieces[i][0] for i in range(len(self._pieces)))
        ok = (self._v1 is not None and hashlib.sha1(data).digest() == self._v1) or (
            self._v2 is not None and hashlib.sha256(data).digest()[: len(self._v2)] == self._v2
        )
        if ok:
            self.metadata = data
            return data
        contributors = {peer for _, peer in self._pieces.values()}
        self.bad_peers |= contributors
        for peer in contributors:
            self._peers.pop(peer, None)
        self._pieces.clear()
        if not self._peers:
            self._size = None  # the size may have come from a liar: take the next peer's
        return None
