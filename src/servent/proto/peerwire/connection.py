"""One peer wire connection as a sans-IO state machine.

The driver feeds bytes with :meth:`PeerConnection.receive_data`, pulls
events with :meth:`PeerConnection.next_event` until ``None``; messages queued
with :meth:`PeerConnection.send` call :attr:`PeerConnection.on_output` (the
driver's cue) and leave by :meth:`PeerConnection.chunks_to_send`.  Time is an
argument; :meth:`next_timer` / :meth:`handle_timer` drive timeouts.

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

Receive path cost: :class:`~servent.proto.peerwire.framing.FrameReader`,
with :attr:`PeerConnection.borrow_input`, parses straight from the driver's
read buffer (a block is a view into it, copied once into its piece buffer);
otherwise bytes are appended once to a ``bytearray`` and a block is copied
out once, as ``bytes``.  The rules applied to received
messages live in :mod:`~servent.proto.peerwire.inbound`, the bookkeeping of
sent ones in :mod:`~servent.proto.peerwire.outbound`.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Callable
from typing import NoReturn

from servent.errors import HandshakeError, PeerWireError
from servent.proto.peerwire.config import ConnectionConfig, ConnectionState
from servent.proto.peerwire.events import (
    BlockSink,
    ConnectionTimedOut,
    Event,
    HandshakeReceived,
    Snubbed,
)
from servent.proto.peerwire.extensions import (
    ExtensionHandshake,
    ExtensionRegistry,
)
from servent.proto.peerwire.framing import FrameReader
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
from servent.proto.peerwire.inbound import InboundRules
from servent.proto.peerwire.messages import (
    PIECE,
    REQUEST,
    HashRequest,
    KeepAlive,
    Request,
    bitfield_length,
    decode_message,
)
from servent.proto.peerwire.outbound import OutboundQueue
from servent.proto.peerwire.requests import RequestLedger

__all__ = ["BlockSink", "ConnectionConfig", "ConnectionState", "PeerConnection"]


logger = logging.getLogger(__name__)

#: Outstanding requests assumed acceptable to a peer that did not send ``reqq``.
DEFAULT_REMOTE_REQUEST_QUEUE = 250

_U32 = struct.Struct(">I")
_THREE_U32 = struct.Struct(">III")


def _truncate(info_hash_v2: bytes | None) -> bytes | None:
    if info_hash_v2 is None:
        return None
    if len(info_hash_v2) not in (20, 32):
        raise ValueError("info_hash_v2 must be 32 bytes (or 20 when truncated)")
    return info_hash_v2[:20]


class PeerConnection(InboundRules, OutboundQueue):
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
        #: Called as ``sink(index, begin, block, requested_at)`` for each received
        #: block instead of queueing a :class:`Piece` event (see :class:`BlockSink`).
        self.block_sink: BlockSink | None = None
        #: Hand consecutive blocks over as one :class:`BlocksReceived` (instead of a
        #: :class:`Piece` each) when there is no :attr:`block_sink`.
        self.batch_blocks = False
        self._reader = FrameReader(self.config.max_receive_buffer)
        #: The longest frame accepted (a bitfield may be longer, once the size is known).
        self._frame_limit = self.config.max_message_length
        self._out: list[bytes | memoryview] = []
        #: Called when output is queued on an empty queue: the shell's cue to write.
        self.on_output: Callable[[], None] | None = None
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
        self._frame_limit = max(self.config.max_message_length, bitfield_length(num_pieces) + 1)

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
        With :attr:`borrow_input` set, ``data`` must stay unchanged until
        :meth:`next_event` returns ``None``.
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
        try:
            self._reader.feed(data)
        except PeerWireError as exc:
            self._fail(exc)

    @property
    def borrow_input(self) -> bool:
        """Zero-copy receive, for a driver that owns its read buffer.

        When True, :meth:`receive_data` keeps a view of the bytes it is given
        instead of copying them, and a :class:`Piece` event's ``block`` is a
        ``memoryview`` into them, valid only until the driver reuses its
        buffer: consume (copy) it before returning from the event handler.
        """
        return self._reader.borrow

    @borrow_input.setter
    def borrow_input(self, value: bool) -> None:
        self._reader.borrow = value

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
            self._reader.release()  # e.g. awaiting accept(): keep nothing borrowed
            return None
        reader = self._reader
        max_length = self._frame_limit
        while True:
            try:
                frame = reader.next_frame(max_length)
            except PeerWireError as exc:
                self._fail(exc)
            if frame is None:
                return None
            buf, start, end = frame
            if start == end:
                continue  # keep-alive
            kind = buf[start]
            if kind == REQUEST and end - start == 13:
                # The seeder's per-block message: parsed in place, no copy.
                request = Request(*_THREE_U32.unpack_from(buf, start + 1))
                event: Event | None = self._on_request(request)
            elif kind == PIECE and end - start >= 9:
                event = self._on_piece_frame(buf, start, end, max_length)
                closed = self.state is not ConnectionState.OPEN and not self._drain_after_close
                if event is None and closed:
                    reader.release()  # the block sink closed us: parse no further
                    return None
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

    def _fail(self, error: PeerWireError) -> NoReturn:
        self.state = ConnectionState.CLOSED
        self._drain_after_close = False
        self._reader.clear()
        self._events.clear()
        raise error

    def _parse_handshake(self) -> None:
        available = self._reader.peek(HANDSHAKE_LENGTH)
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
        self._reader.skip(HANDSHAKE_LENGTH)
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
        self._push(Handshake(self._our_reserved, info_hash, self.peer_id).encode())
        self._handshake_sent = True

    # ---------------------------------------------------------------- queries

    @property
    def outstanding_requests(self) -> tuple[Request, ...]:
        """Requests we sent that have not been answered, oldest first."""
        return tuple(Request(*key) for key in self._ledger.outstanding)

    @property
    def outstanding_count(self) -> int:
        """How many of our requests are unanswered (cheap; for pipeline top-ups)."""
        return len(self._ledger.outstanding)

    @property
    def expects_blocks(self) -> bool:
        """Whether piece data may still arrive; else only small, bounded messages can
        (an unsolicited piece fails the connection), which a download limit need not pace."""
        return self._ledger.expects_blocks()

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
