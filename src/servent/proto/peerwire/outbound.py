"""Queueing messages to send (the outbound half of PeerConnection).

Why apart: sending keeps its own bookkeeping (our choke and interest state,
the requests we sent, the requests we owe, hash requests) and its own queue
of encoded chunks handed to the driver without joining them.
:class:`OutboundQueue` is a mixin of
:class:`~servent.proto.peerwire.connection.PeerConnection`.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Sequence
from itertools import starmap

from servent.errors import ExtensionNotSupportedError
from servent.proto.peerwire.config import ConnectionConfig, ConnectionState
from servent.proto.peerwire.extensions import ExtensionHandshake, ExtensionRegistry
from servent.proto.peerwire.fast import DEFAULT_ALLOWED_FAST_COUNT, allowed_fast_set
from servent.proto.peerwire.inbound import FAST_TYPES
from servent.proto.peerwire.messages import (
    REQUEST,
    AllowedFast,
    Cancel,
    Choke,
    Extended,
    HashRequest,
    Interested,
    Message,
    NotInterested,
    Piece,
    RejectRequest,
    Request,
    Unchoke,
    encode_message,
    encode_piece_header,
)
from servent.proto.peerwire.requests import BlockKey, RequestLedger

__all__ = ["MAX_HASH_REQUESTS", "OutboundQueue"]

logger = logging.getLogger("servent.proto.peerwire.connection")

#: A request frame: its head (length prefix 13, id) and its fields (index, begin, length).
_REQUEST_HEAD = struct.pack(">IB", 13, REQUEST)
_REQUEST_FIELDS = struct.Struct(">III").pack

#: Hash requests we keep outstanding with one peer.
MAX_HASH_REQUESTS = 64


class OutboundQueue:
    """``send()`` with its bookkeeping, and the queue the driver writes out."""

    config: ConnectionConfig
    state: ConnectionState
    num_pieces: int | None
    info_hash: bytes | None
    fast: bool
    extension_protocol: bool
    extensions: ExtensionRegistry
    remote_extensions: ExtensionHandshake | None
    am_choking: bool
    am_interested: bool
    allowed_fast_sent: set[int]
    payload_sent: int
    _ledger: RequestLedger
    _hash_requests: dict[HashRequest, None]
    _rejected_while_choked: int
    _out: list[bytes | memoryview]
    on_output: Callable[[], None] | None
    _now: float
    _last_sent: float
    _last_progress: float

    def send(self, message: Message, now: float | None = None) -> None:
        """Queue ``message``; its bytes come out of :meth:`data_to_send`.

        Keeps the connection's bookkeeping: choke state, our outstanding
        requests, the peer's pending requests.  Sending on a CLOSED connection
        does nothing (the peer left); before the handshake it is an error.
        A :class:`Piece` answering a
        request that is no longer pending (cancelled, or rejected by a choke)
        is dropped silently, as the protocol requires.
        """
        if now is not None:
            self._now = now
        if self.state is ConnectionState.CLOSED:
            return  # the peer is gone; nothing to send to
        if self.state is not ConnectionState.OPEN:
            raise RuntimeError(f"cannot send in state {self.state.value}")
        kind = type(message)
        if kind is Piece:
            assert isinstance(message, Piece)
            key = (message.index, message.begin, len(message.block))
            if not self._ledger.settle_owed(key):
                logger.debug("dropping piece for a request no longer pending: %s", key)
                return
            self.payload_sent += len(message.block)
            if not self._out and self.on_output is not None:
                self.on_output()
            self._out.append(encode_piece_header(message.index, message.begin, len(message.block)))
            self._out.append(message.block)
            self._last_sent = self._now
            return
        if kind is Request:
            assert isinstance(message, Request)
            if not self._ledger.outstanding:
                self._last_progress = self._now
            self._ledger.sent((message.index, message.begin, message.length), self._now)
        elif kind is Cancel:
            assert isinstance(message, Cancel)
            self._ledger.cancel_sent((message.index, message.begin, message.length), self.fast)
        elif kind is RejectRequest:
            assert isinstance(message, RejectRequest)
            if not self.fast:
                raise ValueError("reject needs the fast extension")
            self._ledger.settle_owed((message.index, message.begin, message.length))
        elif kind is Choke:
            self.am_choking = True
            self._rejected_while_choked = 0
            self._queue(message)
            self._reject_pending_on_choke()
            return
        elif kind is Unchoke:
            self.am_choking = False
        elif kind is Interested:
            self.am_interested = True
        elif kind is NotInterested:
            self.am_interested = False
        elif kind is AllowedFast:
            assert isinstance(message, AllowedFast)
            if not self.fast:
                raise ValueError("allowed-fast needs the fast extension")
            self.allowed_fast_sent.add(message.index)
        elif kind in FAST_TYPES and not self.fast:
            raise ValueError(f"{kind.__name__} needs the fast extension")
        elif kind is HashRequest:
            assert isinstance(message, HashRequest)
            if len(self._hash_requests) >= MAX_HASH_REQUESTS:
                raise ValueError("too many hash requests outstanding")
            self._hash_requests[message] = None
        elif kind is Extended and not self.extension_protocol:
            raise ExtensionNotSupportedError("peer does not speak BEP 10")
        self._queue(message)

    def send_requests(self, requests: Sequence[Request]) -> None:
        """Queue block requests: the same as :meth:`send` for each, encoded in one chunk."""
        self.send_request_keys([(r.index, r.begin, r.length) for r in requests])

    def send_request_keys(self, keys: Sequence[BlockKey]) -> None:
        """:meth:`send_requests` for ``(index, begin, length)`` triples.

        Why: a leecher sends tens of thousands of requests per GiB; building a
        message object and a frame per request through the generic encoder
        was a visible share of its CPU.
        """
        if self.state is ConnectionState.CLOSED or not keys:
            return
        if self.state is not ConnectionState.OPEN:
            raise RuntimeError(f"cannot send in state {self.state.value}")
        # Loops in C (starmap, join, fromkeys), none in Python; packing comes first,
        # so a value out of range raises before anything is noted.
        frames = _REQUEST_HEAD + _REQUEST_HEAD.join(starmap(_REQUEST_FIELDS, keys))
        now = self._now
        outstanding = self._ledger.outstanding
        if not outstanding:
            self._last_progress = now
        outstanding.update(dict.fromkeys(keys, now))
        if not self._out and self.on_output is not None:
            self.on_output()
        self._out.append(frames)
        self._last_sent = now

    def _queue(self, message: Message) -> None:
        self._push(encode_message(message))

    def _push(self, chunk: bytes) -> None:
        """Queue encoded bytes (the first chunk after a write cues the shell)."""
        if not self._out and self.on_output is not None:
            self.on_output()
        self._out.append(chunk)
        self._last_sent = self._now

    def _reject_pending_on_choke(self) -> None:
        if not self.fast:
            self._ledger.void_owed_on_choke(set())
            return
        for index, begin, length in self._ledger.void_owed_on_choke(self.allowed_fast_sent):
            self._queue(RejectRequest(index, begin, length))

    def offer_allowed_fast(self, ip: str, count: int = DEFAULT_ALLOWED_FAST_COUNT) -> list[int]:
        """Send the peer its BEP 6 allowed-fast set (computed from its IP); returns the pieces.

        Does nothing without the fast extension or before the torrent size is known.
        """
        if not self.fast or self.num_pieces is None or self.info_hash is None:
            return []
        pieces = allowed_fast_set(ip, self.info_hash, self.num_pieces, count)
        for index in pieces:
            self.send(AllowedFast(index))
        return pieces

    def send_extension_handshake(self, extra: dict[str, object] | None = None) -> None:
        """Send our BEP 10 handshake (``m`` from the registry plus ``extra`` keys).

        ``reqq`` defaults to ``config.max_peer_requests`` so the peer never
        queues more requests than we accept.
        """
        if not self.extension_protocol:
            raise ExtensionNotSupportedError("peer does not speak BEP 10")
        fields = {"reqq": self.config.max_peer_requests, **(extra or {})}
        payload = self.extensions.handshake_payload(fields)  # type: ignore[arg-type]
        self.send(Extended(0, payload))

    def remote_supports(self, name: str) -> bool:
        """Whether the peer announced extension ``name`` in its BEP 10 handshake."""
        remote = self.remote_extensions
        return remote is not None and name in remote.extensions

    def send_extension(self, name: str, payload: bytes) -> None:
        """Send ``payload`` to the peer's extension ``name``, on the id the peer chose."""
        remote = self.remote_extensions
        ext_id = None if remote is None else remote.extensions.get(name)
        if ext_id is None:
            raise ExtensionNotSupportedError(f"peer does not support {name}")
        self.send(Extended(ext_id, payload))

    def data_to_send(self) -> bytes:
        """All queued bytes (handshake, messages), joined; empties the queue."""
        out = self._out
        if not out:
            return b""
        data = bytes(out[0]) if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def chunks_to_send(self) -> list[bytes | memoryview]:
        """Queued bytes as a list of chunks for ``transport.writelines`` (no join copy)."""
        out = self._out
        self._out = []
        return out
