"""One peer wire connection as a sans-IO state machine.

The driver feeds received bytes with :meth:`PeerConnection.receive_data`,
pulls events with :meth:`PeerConnection.next_event` until it returns
``None``, queues messages with :meth:`PeerConnection.send` and writes
:meth:`PeerConnection.data_to_send` to the socket.  Time is an argument;
:meth:`next_timer` / :meth:`handle_timer` drive keep-alives and timeouts.

The connection enforces the protocol rules that need only its own state, so
a session never sees a message it must not act on:

* bounded frames and a bounded receive buffer (:class:`ConnectionConfig`);
* capability checks: fast-extension messages without BEP 6, extended
  messages without BEP 10 are fatal;
* requests *we* sent are tracked: an unsolicited piece is fatal (BEP 6), a
  choke without BEP 6 yields :class:`RequestsDropped`;
* requests *the peer* sent are tracked: requests while we choke it are
  rejected automatically (or ignored without BEP 6) unless allowed-fast,
  choking rejects the pending ones, a cancel is answered with a reject
  (BEP 6 "exactly one response"), a piece we send for a request no longer
  pending is silently dropped, and too many pending requests is a flood.

Protocol violations raise a :class:`~servent.errors.PeerWireError` subclass
from :meth:`receive_data` or :meth:`next_event`; the connection is then
closed and the driver should drop the socket (and perhaps ban the peer).

Receive path cost: bytes are appended once to a ``bytearray``; frames are
parsed in place with ``struct.unpack_from``; a piece's block is copied out
once, as ``bytes``.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from typing import NoReturn

from servent.errors import (
    ExtensionNotSupportedError,
    HandshakeError,
    MalformedMessageError,
    MessageTooLargeError,
    PeerWireError,
    RequestFloodError,
    UnexpectedMessageError,
)
from servent.proto.peerwire.config import ConnectionConfig, ConnectionState
from servent.proto.peerwire.events import (
    ConnectionTimedOut,
    Event,
    ExtensionHandshakeReceived,
    ExtensionMessage,
    HandshakeReceived,
    RequestsDropped,
    Snubbed,
)
from servent.proto.peerwire.extensions import (
    ExtensionHandshake,
    ExtensionRegistry,
    parse_extension_handshake,
)
from servent.proto.peerwire.fast import DEFAULT_ALLOWED_FAST_COUNT, allowed_fast_set
from servent.proto.peerwire.handshake import (
    HANDSHAKE_LENGTH,
    HEADER_LENGTH,
    RESERVED_DHT,
    RESERVED_EXTENSION,
    RESERVED_FAST,
    RESERVED_V2,
    Handshake,
    check_protocol_header,
    make_reserved,
    parse_handshake,
)
from servent.proto.peerwire.messages import (
    FAST_IDS,
    PIECE,
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
    Message,
    NotInterested,
    Piece,
    RejectRequest,
    Request,
    SuggestPiece,
    Unchoke,
    UnknownMessage,
    bitfield_length,
    check_bitfield,
    decode_message,
    encode_message,
    encode_piece_header,
)
from servent.proto.peerwire.requests import RequestLedger

__all__ = ["ConnectionConfig", "ConnectionState", "PeerConnection"]

logger = logging.getLogger(__name__)

#: BEP 52: a hash request SHOULD NOT ask for more than 512 hashes.
MAX_HASH_REQUEST_LENGTH = 512
#: Outstanding requests assumed acceptable to a peer that did not send ``reqq``.
DEFAULT_REMOTE_REQUEST_QUEUE = 250
#: Hash requests we keep outstanding with one peer.
MAX_HASH_REQUESTS = 64

_U32 = struct.Struct(">I")
_TWO_U32 = struct.Struct(">II")


def _truncate(info_hash_v2: bytes | None) -> bytes | None:
    if info_hash_v2 is None:
        return None
    if len(info_hash_v2) not in (20, 32):
        raise ValueError("info_hash_v2 must be 32 bytes (or 20 when truncated)")
    return info_hash_v2[:20]


class PeerConnection:
    """Sans-IO peer wire connection (BEP 3, 6, 10, 52 messages).

    ``info_hash`` is the 20-byte hash to announce (``Metainfo.wire_info_hash``);
    ``info_hash_v2`` (32 or 20 bytes) enables the BEP 52 upgrade for hybrid
    torrents and acceptance of the truncated v2 hash.  An incoming connection
    on a listener serving several torrents is created with ``info_hash=None``
    and ``initiator=False``; after :class:`HandshakeReceived` the driver picks
    the torrent and calls :meth:`accept`.
    """

    def __init__(
        self,
        *,
        peer_id: bytes,
        info_hash: bytes | None,
        initiator: bool,
        now: float,
        info_hash_v2: bytes | None = None,
        num_pieces: int | None = None,
        extensions: ExtensionRegistry | None = None,
        config: ConnectionConfig | None = None,
    ) -> None:
        if len(peer_id) != 20:
            raise ValueError("peer_id must be 20 bytes")
        if info_hash is None and initiator:
            raise ValueError("an outgoing connection needs an info_hash")
        self.config = config or ConnectionConfig()
        self.peer_id = peer_id
        self.initiator = initiator
        self.extensions = extensions or ExtensionRegistry()
        self.info_hash: bytes | None = None
        self.info_hash_v2: bytes | None = None
        self.num_pieces: int | None = None
        self.state = ConnectionState.HANDSHAKE
        self.remote_handshake: Handshake | None = None
        self.is_v2 = False
        self.fast = False
        self.extension_protocol = False
        self.dht = False
        self.remote_extensions: ExtensionHandshake | None = None
        # Choke/interest state, both directions; connections start choked, not interested.
        self.am_choking = True
        self.am_interested = False
        self.peer_choking = True
        self.peer_interested = False
        #: Pieces the peer lets us request while choked (BEP 6).
        self.allowed_fast_received: set[int] = set()
        #: Pieces we told the peer it may request while choked.
        self.allowed_fast_sent: set[int] = set()
        # Counters for rate measurement by the session.
        self.payload_received = 0
        self.payload_sent = 0
        self._buf = bytearray()
        self._pos = 0
        self._out: list[bytes] = []
        self._events: deque[Event] = deque()
        self._ledger = RequestLedger()
        self._hash_requests: dict[HashRequest, None] = {}
        self._rejected_while_choked = 0
        self._piece_sets_received = 0
        self._drain_after_close = False
        self._handshake_sent = False
        self._now = now
        self._created = now
        self._last_received = now
        self._last_sent = now
        self._last_progress = now
        self._snub_reported = False
        self._our_reserved = self._reserved(info_hash_v2 is not None)
        if info_hash is not None:
            self._bind(info_hash, info_hash_v2, num_pieces)
        if initiator and info_hash is not None:
            self._send_handshake(info_hash)

    # ------------------------------------------------------------------ setup

    def _reserved(self, v2: bool) -> bytes:
        bits: list[tuple[int, int]] = []
        if self.config.enable_fast:
            bits.append(RESERVED_FAST)
        if self.config.enable_extensions:
            bits.append(RESERVED_EXTENSION)
        if self.config.enable_dht:
            bits.append(RESERVED_DHT)
        if v2:
            bits.append(RESERVED_V2)
        return make_reserved(*bits)

    def _bind(self, info_hash: bytes, info_hash_v2: bytes | None, num_pieces: int | None) -> None:
        if len(info_hash) != 20:
            raise ValueError("info_hash must be 20 bytes")
        self.info_hash = info_hash
        self.info_hash_v2 = _truncate(info_hash_v2)
        self._our_reserved = self._reserved(info_hash_v2 is not None)
        if num_pieces is not None:
            self.set_num_pieces(num_pieces)

    def set_num_pieces(self, num_pieces: int) -> None:
        """Tell the connection the torrent size (e.g. once a magnet's metadata arrived).

        From then on piece indices and bitfields are checked against it.
        """
        if num_pieces <= 0:
            raise ValueError("num_pieces must be positive")
        self.num_pieces = num_pieces

    def accept(
        self,
        info_hash: bytes,
        *,
        now: float,
        info_hash_v2: bytes | None = None,
        num_pieces: int | None = None,
    ) -> None:
        """Serve the torrent the incoming peer asked for and answer its handshake.

        ``info_hash`` is the torrent's wire hash (v1 or truncated v2); the
        handshake the peer sent must match it or the v2 hash.
        """
        if self.state is not ConnectionState.AWAIT_ACCEPT or self.remote_handshake is None:
            raise RuntimeError("accept() only after HandshakeReceived on an incoming connection")
        self._now = now
        self._bind(info_hash, info_hash_v2, num_pieces)
        self._check_remote_info_hash(self.remote_handshake)
        self._open(self.remote_handshake)

    # --------------------------------------------------------------- receiving

    def receive_data(self, data: bytes | bytearray | memoryview, now: float | None = None) -> None:
        """Append bytes read from the socket; parse them with :meth:`next_event`.

        An empty ``data`` means the peer closed: the connection becomes CLOSED,
        but frames already buffered are still returned by :meth:`next_event`.
        """
        if now is not None:
            self._now = now
        if self.state is ConnectionState.CLOSED:
            return
        if not data:
            self._drain_after_close = self.state is ConnectionState.OPEN
            self.state = ConnectionState.CLOSED
            return
        self._last_received = self._now
        if self._pos and self._pos == len(self._buf):
            self._buf.clear()
            self._pos = 0
        if len(self._buf) - self._pos + len(data) > self.config.max_receive_buffer:
            self._fail(MessageTooLargeError("receive buffer overflow"))
        self._buf += data

    def next_event(self) -> Event | None:
        """The next event, or ``None`` when more data is needed (or the connection is closed)."""
        events = self._events
        if events:
            return events.popleft()
        state = self.state
        if state is not ConnectionState.OPEN and not self._drain_after_close:
            if state is ConnectionState.HANDSHAKE:
                self._parse_handshake()
                if events:
                    return events.popleft()
            return None
        buf = self._buf
        max_length = self._max_frame()
        while True:
            pos = self._pos
            available = len(buf) - pos
            if available < 4:
                self._compact()
                return None
            (length,) = _U32.unpack_from(buf, pos)
            if length > max_length:
                self._fail(MessageTooLargeError(f"message of {length} bytes"))
            end = pos + 4 + length
            if end > len(buf):
                self._compact()
                return None
            self._pos = end
            if length == 0:
                continue  # keep-alive
            start = pos + 4
            if buf[start] == PIECE and length >= 9:
                index, begin = _TWO_U32.unpack_from(buf, start + 1)
                with memoryview(buf) as view:
                    block = bytes(view[start + 9 : end])
                event: Event | None = self._on_piece(Piece(index, begin, block))
            else:
                # Other messages are small: decode from a copy, so no view of the
                # buffer outlives this call (a live export would block resizing).
                try:
                    message = decode_message(bytes(buf[start:end]))
                except PeerWireError as exc:
                    self._fail(exc)
                event = self._on_message(message)
            if event is not None:
                return event
            if events:
                return events.popleft()

    def _max_frame(self) -> int:
        limit = self.config.max_message_length
        if self.num_pieces is not None:
            limit = max(limit, bitfield_length(self.num_pieces) + 1)
        return limit

    def _compact(self) -> None:
        if self._pos:
            del self._buf[: self._pos]
            self._pos = 0

    def _fail(self, error: PeerWireError) -> NoReturn:
        self.state = ConnectionState.CLOSED
        self._drain_after_close = False
        self._buf.clear()
        self._pos = 0
        self._events.clear()
        raise error

    def _parse_handshake(self) -> None:
        available = bytes(self._buf[self._pos : self._pos + HANDSHAKE_LENGTH])
        try:
            check_protocol_header(available[:20])
        except HandshakeError as exc:
            self._fail(exc)
        if (
            len(available) >= HEADER_LENGTH
            and self.info_hash is not None
            and available[28:48] not in self._acceptable_hashes()
        ):
            self._fail(HandshakeError("handshake for another torrent"))
        if len(available) < HANDSHAKE_LENGTH:
            return
        handshake = parse_handshake(available)
        self._pos += HANDSHAKE_LENGTH
        if handshake.peer_id == self.peer_id:
            self._fail(HandshakeError("connected to ourselves"))
        self.remote_handshake = handshake
        if self.info_hash is None:
            self.state = ConnectionState.AWAIT_ACCEPT
            self._events.append(HandshakeReceived(handshake, False))
            return
        self._check_remote_info_hash(handshake)
        self._open(handshake)

    def _acceptable_hashes(self) -> tuple[bytes, ...]:
        assert self.info_hash is not None
        if self.info_hash_v2 is None:
            return (self.info_hash,)
        return (self.info_hash, self.info_hash_v2)

    def _check_remote_info_hash(self, handshake: Handshake) -> None:
        # The v1 hash or the truncated v2 hash; for an initiator the latter is
        # the upgrade it offered by setting the v2 bit.
        if handshake.info_hash not in self._acceptable_hashes():
            self._fail(HandshakeError("handshake for another torrent"))

    def _open(self, handshake: Handshake) -> None:
        assert self.info_hash is not None
        config = self.config
        self.fast = config.enable_fast and handshake.supports_fast
        self.extension_protocol = config.enable_extensions and handshake.supports_extensions
        self.dht = config.enable_dht and handshake.supports_dht
        if self.initiator:
            self.is_v2 = handshake.info_hash == self.info_hash_v2
        else:
            answer = handshake.info_hash
            if (
                self.info_hash_v2 is not None
                and handshake.info_hash == self.info_hash
                and handshake.supports_v2
                and config.upgrade_to_v2
            ):
                answer = self.info_hash_v2
            self.is_v2 = answer == self.info_hash_v2
            self._send_handshake(answer)
        self.state = ConnectionState.OPEN
        self._last_progress = self._now
        self._events.append(HandshakeReceived(handshake, self.is_v2))

    def _send_handshake(self, info_hash: bytes) -> None:
        self._out.append(Handshake(self._our_reserved, info_hash, self.peer_id).encode())
        self._handshake_sent = True
        self._last_sent = self._now

    # ------------------------------------------------------ incoming messages

    def _check_index(self, index: int) -> None:
        if self.num_pieces is not None and index >= self.num_pieces:
            self._fail(MalformedMessageError(f"piece index {index} out of range"))

    def _on_piece(self, piece: Piece) -> Event | None:
        self._check_index(piece.index)
        key = (piece.index, piece.begin, len(piece.block))
        if not self._ledger.piece_arrived(key):
            self._fail(UnexpectedMessageError(f"unsolicited piece {key}"))
        self.payload_received += len(piece.block)
        self._last_progress = self._now
        self._snub_reported = False
        return piece

    def _on_message(self, message: Message) -> Event | None:
        if isinstance(message, Have):
            self._check_index(message.index)
            return message
        if isinstance(message, Request):
            return self._on_request(message)
        if isinstance(message, Choke):
            self.peer_choking = True
            if not self.fast and self._ledger.outstanding:
                dropped = self._ledger.drop_outstanding()
                self._events.append(RequestsDropped(tuple(Request(*key) for key in dropped)))
            return message
        if isinstance(message, Unchoke):
            self.peer_choking = False
            return message
        if isinstance(message, Interested | NotInterested):
            self.peer_interested = isinstance(message, Interested)
            return message
        if isinstance(message, Cancel):
            return self._on_cancel(message)
        if isinstance(message, Extended):
            return self._on_extended(message)
        if isinstance(message, UnknownMessage | KeepAlive | Piece):
            logger.debug("ignoring message %r", type(message).__name__)
            return None
        if type(message) in _FAST_TYPES and not self.fast:
            self._fail(UnexpectedMessageError(f"{type(message).__name__} without BEP 6"))
        if isinstance(message, HaveBitfield | HaveAll | HaveNone):
            return self._on_piece_set(message)
        if isinstance(message, RejectRequest):
            key = (message.index, message.begin, message.length)
            return message if self._ledger.reject_arrived(key) else None
        if isinstance(message, SuggestPiece | AllowedFast):
            self._check_index(message.index)
            if isinstance(message, AllowedFast):
                self.allowed_fast_received.add(message.index)
            return message
        if isinstance(message, Hashes | HashReject):
            return self._on_hash_answer(message)
        if isinstance(message, HashRequest):
            if not 1 <= message.length <= MAX_HASH_REQUEST_LENGTH:
                self._fail(MalformedMessageError(f"hash request for {message.length} hashes"))
            return message
        return message  # Port

    def _on_hash_answer(self, message: Hashes | HashReject) -> Event:
        """BEP 52: hashes and hash rejects must answer a hash request we sent."""
        key = HashRequest(
            message.pieces_root,
            message.base_layer,
            message.index,
            message.length,
            message.proof_layers,
        )
        if key not in self._hash_requests:
            self._fail(UnexpectedMessageError("hashes that were not requested"))
        del self._hash_requests[key]
        if isinstance(message, Hashes) and len(message.hashes) > 32 * (
            message.length + message.proof_layers
        ):
            self._fail(MalformedMessageError("more hashes than requested"))
        return message

    def _on_piece_set(self, message: HaveBitfield | HaveAll | HaveNone) -> Event:
        """A bitfield, have-all or have-none: the peer's whole piece set.

        BEP 6 wants exactly one, first; but aria2 sends have-none, then fresh
        bitfields as it progresses and have-all when done, so a later one
        *replaces* the set (the session re-adds the peer to its picker).  The
        work per message is proportional to its size, so no cap is needed.
        """
        self._piece_sets_received += 1
        if isinstance(message, HaveBitfield) and self.num_pieces is not None:
            try:
                check_bitfield(message.bits, self.num_pieces)
            except MalformedMessageError as exc:
                self._fail(exc)
        return message

    def _on_cancel(self, message: Cancel) -> Event | None:
        if not self._ledger.settle_owed((message.index, message.begin, message.length)):
            return None
        if self.fast:
            self._queue(RejectRequest(message.index, message.begin, message.length))
        return message

    def _on_request(self, request: Request) -> Event | None:
        self._check_index(request.index)
        if not 0 < request.length <= self.config.max_request_length:
            self._fail(MalformedMessageError(f"request of {request.length} bytes"))
        if self.am_choking and request.index not in self.allowed_fast_sent:
            self._rejected_while_choked += 1
            if self._rejected_while_choked > self.config.max_requests_while_choked:
                self._fail(RequestFloodError("too many requests while choked"))
            if self.fast:
                self._queue(RejectRequest(request.index, request.begin, request.length))
            return None
        key = (request.index, request.begin, request.length)
        if key not in self._ledger.owed and (
            len(self._ledger.owed) >= self.config.max_peer_requests
        ):
            self._fail(RequestFloodError(f"more than {self.config.max_peer_requests} requests"))
        return request if self._ledger.peer_requested(key) else None

    def _on_extended(self, message: Extended) -> Event | None:
        if not self.extension_protocol:
            self._fail(UnexpectedMessageError("extended message without BEP 10"))
        if message.ext_id == 0:
            try:
                handshake = parse_extension_handshake(message.payload)
            except MalformedMessageError as exc:
                self._fail(exc)
            self.remote_extensions = handshake
            return ExtensionHandshakeReceived(handshake)
        name = self.extensions.name_of(message.ext_id)
        if name is None:
            logger.debug("ignoring message for unregistered extension id %d", message.ext_id)
            return None
        return ExtensionMessage(name, message.payload)

    # ---------------------------------------------------------------- sending

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
        elif kind in _FAST_TYPES and not self.fast:
            raise ValueError(f"{kind.__name__} needs the fast extension")
        elif kind is HashRequest:
            assert isinstance(message, HashRequest)
            if len(self._hash_requests) >= MAX_HASH_REQUESTS:
                raise ValueError("too many hash requests outstanding")
            self._hash_requests[message] = None
        elif kind is Extended and not self.extension_protocol:
            raise ExtensionNotSupportedError("peer does not speak BEP 10")
        self._queue(message)

    def _queue(self, message: Message) -> None:
        self._out.append(encode_message(message))
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
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def chunks_to_send(self) -> list[bytes]:
        """Queued bytes as a list of chunks for ``transport.writelines`` (no join copy)."""
        out = self._out
        self._out = []
        return out

    # ---------------------------------------------------------------- queries

    @property
    def outstanding_requests(self) -> tuple[Request, ...]:
        """Requests we sent that have not been answered, oldest first."""
        return tuple(Request(*key) for key in self._ledger.outstanding)

    @property
    def outstanding_count(self) -> int:
        """How many of our requests are unanswered (cheap; for pipeline top-ups)."""
        return len(self._ledger.outstanding)

    def request_sent_at(self, request: Request) -> float | None:
        """When we sent ``request``, if it is still outstanding."""
        return self._ledger.outstanding.get((request.index, request.begin, request.length))

    @property
    def peer_requests(self) -> tuple[Request, ...]:
        """Requests from the peer that we still owe a piece (or reject), oldest first."""
        return tuple(Request(*key) for key in self._ledger.owed)

    def is_request_pending(self, request: Request) -> bool:
        """Whether the peer still wants ``request`` (not cancelled, not choked away)."""
        return (request.index, request.begin, request.length) in self._ledger.owed

    @property
    def max_outstanding_requests(self) -> int:
        """Requests the peer accepts at once: its ``reqq``, else a conservative default.

        Cap the pipeline depth with it (``min(pipeline.depth(now), this)``).
        """
        remote = self.remote_extensions
        reqq = None if remote is None else remote.request_queue
        return min(reqq, 100_000) if reqq is not None else DEFAULT_REMOTE_REQUEST_QUEUE

    def can_request(self, index: int) -> bool:
        """Whether requesting a block of piece ``index`` is allowed right now."""
        return not self.peer_choking or (self.fast and index in self.allowed_fast_received)

    # ----------------------------------------------------------------- timers

    def next_timer(self) -> float | None:
        """When :meth:`handle_timer` next has work, or ``None`` once closed."""
        config = self.config
        if self.state is ConnectionState.CLOSED:
            return None
        if self.state is not ConnectionState.OPEN:
            return self._created + config.handshake_timeout
        deadline = min(
            self._last_received + config.idle_timeout,
            self._last_sent + config.keepalive_interval,
        )
        if self._ledger.outstanding and not self._snub_reported:
            deadline = min(deadline, self._last_progress + config.request_timeout)
        return deadline

    def handle_timer(self, now: float) -> None:
        """Send keep-alives and report timeouts as events."""
        self._now = now
        config = self.config
        if self.state is ConnectionState.CLOSED:
            return
        if self.state is not ConnectionState.OPEN:
            if now >= self._created + config.handshake_timeout:
                self.state = ConnectionState.CLOSED
                self._events.append(ConnectionTimedOut("handshake"))
            return
        if now >= self._last_received + config.idle_timeout:
            self.state = ConnectionState.CLOSED
            self._events.append(ConnectionTimedOut("idle"))
            return
        if now >= self._last_sent + config.keepalive_interval:
            self._queue(KeepAlive())
        if (
            self._ledger.outstanding
            and not self._snub_reported
            and now >= self._last_progress + config.request_timeout
        ):
            self._snub_reported = True
            self._events.append(Snubbed(self.outstanding_requests))

    def close(self) -> None:
        """Mark the connection closed (the driver closes the socket); buffered input is dropped."""
        self.state = ConnectionState.CLOSED
        self._drain_after_close = False


_FAST_TYPES: dict[type, int] = {
    SuggestPiece: 13,
    HaveAll: 14,
    HaveNone: 15,
    RejectRequest: 16,
    AllowedFast: 17,
}
assert set(_FAST_TYPES.values()) == FAST_IDS
