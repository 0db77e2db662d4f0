"""Rules for messages received on an open connection (the inbound half of PeerConnection).

Why apart from :mod:`~servent.proto.peerwire.connection`: these are the
checks that make an event safe to act on (index ranges, capability checks,
the request ledger, flood limits); the connection module keeps the life
cycle, framing and timers.  :class:`InboundRules` is a mixin of
:class:`~servent.proto.peerwire.connection.PeerConnection` and only makes
sense there: it reads and updates the connection's state.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from typing import TYPE_CHECKING, Any, NoReturn

from servent.errors import (
    MalformedMessageError,
    PeerWireError,
    RequestFloodError,
    UnexpectedMessageError,
)
from servent.proto.peerwire import piece_run
from servent.proto.peerwire.config import ConnectionConfig, ConnectionState
from servent.proto.peerwire.events import (
    BlockSink,
    BlocksReceived,
    Event,
    ExtensionHandshakeReceived,
    ExtensionMessage,
    ReceivedBlock,
    RequestsDropped,
)
from servent.proto.peerwire.extensions import (
    ExtensionHandshake,
    ExtensionRegistry,
    merge_extension_handshake,
    parse_extension_handshake,
)
from servent.proto.peerwire.framing import FrameReader
from servent.proto.peerwire.messages import (
    FAST_IDS,
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
    check_bitfield,
)
from servent.proto.peerwire.piece_run import BlockTaker
from servent.proto.peerwire.requests import RequestLedger

__all__ = ["FAST_TYPES", "MAX_HASH_REQUEST_LENGTH", "InboundRules"]

logger = logging.getLogger("servent.proto.peerwire.connection")

#: BEP 52: a hash request SHOULD NOT ask for more than 512 hashes.
MAX_HASH_REQUEST_LENGTH = 512

_TWO_U32 = struct.Struct(">II")


class InboundRules:
    """Checks and bookkeeping for each received message; returns the event to report."""

    config: ConnectionConfig
    num_pieces: int | None
    fast: bool
    extension_protocol: bool
    extensions: ExtensionRegistry
    remote_extensions: ExtensionHandshake | None
    am_choking: bool
    peer_choking: bool
    peer_interested: bool
    allowed_fast_received: set[int]
    allowed_fast_sent: set[int]
    payload_received: int
    block_sink: BlockSink | None
    batch_blocks: bool
    _ledger: RequestLedger
    _reader: FrameReader
    _events: deque[Event]
    _hash_requests: dict[HashRequest, None]
    _rejected_while_choked: int
    _piece_sets_received: int
    _now: float
    _last_received: float
    _frame_limit: int
    state: ConnectionState
    _last_progress: float
    _snub_reported: bool

    if TYPE_CHECKING:

        def _fail(self, error: PeerWireError) -> NoReturn: ...

        def _queue(self, message: Message) -> None: ...

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

    def _settle_piece(self, index: int, begin: int, length: int) -> float | None:
        """The checks of :meth:`_on_piece` for the block fast path; returns when we asked.

        ``None`` for a block of a request we had cancelled (legal, late).
        """
        if self.num_pieces is not None and index >= self.num_pieces:
            self._fail(MalformedMessageError(f"piece index {index} out of range"))
        key = (index, begin, length)
        requested_at = self._ledger.outstanding.pop(key, None)
        if requested_at is None and not self._ledger.piece_arrived(key):
            self._fail(UnexpectedMessageError(f"unsolicited piece {key}"))
        self.payload_received += length
        self._last_progress = self._now
        self._snub_reported = False
        return requested_at

    def _on_piece_frame(
        self, buf: bytearray | memoryview, start: int, end: int, max_length: int
    ) -> Event | None:
        """A piece frame (``buf[start:end]``): to the block sink, or as an event."""
        index, begin = _TWO_U32.unpack_from(buf, start + 1)
        if isinstance(buf, memoryview) and self._reader.borrow:
            block: bytes | memoryview = buf[start + 9 : end]
        else:
            with memoryview(buf) as view:
                block = bytes(view[start + 9 : end])
        sink = self.block_sink
        if sink is not None:
            # The per-block path: checked here, handed over without an event.
            sink(index, begin, block, self._settle_piece(index, begin, end - start - 9))
            return None
        if self.batch_blocks:
            requested_at = self._settle_piece(index, begin, end - start - 9)
            return self._block_run((index, begin, block, requested_at), max_length)
        return self._on_piece(Piece(index, begin, block))

    def _block_run(self, first: ReceivedBlock, max_length: int) -> BlocksReceived:
        """``first`` and the whole piece frames right after it in the borrowed input.

        The same checks as :meth:`_settle_piece`, in one loop without a call per
        block.  A frame that is not a piece, or fails a check, ends the run
        unparsed: the regular path then takes it (and raises for a bad one), so
        the blocks before it are handed over as they would be one by one.
        """
        blocks = [first]
        tail = self._reader.borrowed_tail()
        if tail is None:
            return BlocksReceived(blocks)
        view, pos = tail
        last_index = (1 << 32) if self.num_pieces is None else self.num_pieces
        ledger = self._ledger
        pos, received = piece_run.scan_piece_run(
            view, pos, max_length, last_index, ledger.outstanding, ledger.cancelled, blocks
        )
        self._reader.advance(pos)
        self.payload_received += received
        return BlocksReceived(blocks)

    def read_blocks(self, data: memoryview, now: float) -> tuple[list[ReceivedBlock], int]:
        """:meth:`take_blocks`, the blocks collected in a list: ``(blocks, position)``."""
        blocks: list[ReceivedBlock] = []
        scan = piece_run.scan_piece_run

        def collect(view: memoryview | bytearray, pos: int, *ledger: Any) -> tuple[int, int]:
            return scan(view, pos, *ledger, blocks)  # type: ignore[call-arg]

        return blocks, self.take_blocks(data, now, collect)

    def take_blocks(self, data: memoryview, now: float, take: BlockTaker) -> int:
        """The leecher's lane: the blocks a read begins with, taken without events.

        For a driver in borrow mode, before :meth:`receive_data`: ``data`` is
        its read, unchanged until this returns.  ``take`` (a
        :data:`~servent.proto.peerwire.piece_run.BlockTaker`, e.g. a scan into
        a list, or the swarm's straight into its pieces) takes the frame
        carried over from the previous read, then the whole piece frames
        after it while each answers a request, with the checks of
        :meth:`next_event`; a frame cut by the read's end is kept.  Returns
        the position of the first byte not taken: the driver passes the rest
        through :meth:`receive_data`, so anything else (a message, a block
        never asked for, a bad frame) takes the regular path and its checks.
        """
        reader = self._reader
        if (
            self.state is not ConnectionState.OPEN
            or self._events
            or not (self.batch_blocks and reader.borrow)
            or self.block_sink is not None
        ):
            return 0
        max_length = self._frame_limit
        carried = reader.complete_carried(data, max_length)
        if carried is None:
            return 0
        self._now = self._last_received = now
        ledger = self._ledger
        last_index = (1 << 32) if self.num_pieces is None else self.num_pieces
        rules = (max_length, last_index, ledger.outstanding, ledger.cancelled)
        buf, start, pos = carried
        received = 0
        if pos:
            end, received = take(buf, start, *rules)
            if end == start:  # not a block of ours: the regular path parses it, as it was
                del buf[len(buf) - pos :]
                return 0
            reader.drop_carried()
        start = pos
        pos, taken = take(data, pos, *rules)
        if carried[2] or pos > start:
            self.payload_received += received + taken
            self._last_progress = now
            self._snub_reported = False
        return reader.keep_cut(data, pos, max_length)

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
        if type(message) in FAST_TYPES and not self.fast:
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
                if self.remote_extensions is not None:  # BEP 10: a later one updates
                    handshake = merge_extension_handshake(self.remote_extensions, handshake)
            except MalformedMessageError as exc:
                self._fail(exc)
            self.remote_extensions = handshake
            return ExtensionHandshakeReceived(handshake)
        name = self.extensions.name_of(message.ext_id)
        if name is None:
            logger.debug("ignoring message for unregistered extension id %d", message.ext_id)
            return None
        return ExtensionMessage(name, message.payload)


FAST_TYPES: dict[type, int] = {
    SuggestPiece: 13,
    HaveAll: 14,
    HaveNone: 15,
    RejectRequest: 16,
    AllowedFast: 17,
}
assert set(FAST_TYPES.values()) == FAST_IDS
