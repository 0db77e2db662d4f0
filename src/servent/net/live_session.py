"""One live broadcast at one node: its pieces, its neighbours' streams, requests, readers.

The broadcaster's session signs pieces (:meth:`LiveSession.publish`) and sends
each at most :data:`BROADCASTER_COPIES` times; a viewer's session asks its
neighbours for the pieces of its window (:class:`~servent.proto.live_swarm.LiveScheduler`),
checks every signature, and announces what it holds so its neighbours can ask
it in turn.  :class:`LiveReader` hands the bytes to the HTTP route in order,
from the live edge.  Messages: ``docs/live.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.codec.compact import Address
from servent.net.node_channel import NodeStream
from servent.proto.channel import CloseCode
from servent.proto.live import LiveError, LivePiece, LiveWindow, sign_piece, verify_piece
from servent.proto.live_swarm import LiveScheduler
from servent.proto.live_wire import (
    Busy,
    Have,
    Hello,
    LiveMessage,
    Peers,
    PieceMessage,
    Want,
    decode_live_message,
    encode_live_message,
)

__all__ = ["BROADCASTER_COPIES", "LiveReader", "LiveSession", "Neighbour"]

log = logging.getLogger(__name__)

#: Pieces kept (and asked for) behind the live edge.
WINDOW = 256
#: Times the broadcaster sends one piece: its upload is at most this times the bitrate.
BROADCASTER_COPIES = 3
MAX_OUTSTANDING = 8
REQUEST_TIMEOUT = 3.0
#: Seconds a reader waits for a missing piece that newer pieces have overtaken.
SKIP_AFTER = 10.0
#: Addresses of other participants remembered per broadcast.
MAX_KNOWN = 500


@dataclass(eq=False)
class Neighbour:
    """One stream to another participant."""

    stream: NodeStream
    address: Address | None  # where it listens (to tell others), if known
    outgoing: bool
    node_key: bytes | None
    bytes_up: int = 0
    bytes_down: int = 0
    sent: set[int] = field(default_factory=set)  # have announcements already sent


class LiveSession:
    """See the module docstring; ``key`` is the broadcaster's private key, or None."""

    def __init__(
        self,
        topic: bytes,
        public_key: bytes,
        *,
        key: Ed25519PrivateKey | None = None,
        name: str = "",
        window: int = WINDOW,
        clock: Callable[[], float],
        node_key: bytes = b"",
    ) -> None:
        """``node_key``: this node's channel key (breaks ties between duplicate streams)."""
        self.topic = topic
        self.public_key = public_key
        self.key = key
        self.name = name
        self.clock = clock
        self.node_key = node_key
        self.window = LiveWindow(window)
        self.scheduler = LiveScheduler(
            self.window, max_outstanding=MAX_OUTSTANDING, timeout=REQUEST_TIMEOUT
        )
        self.pieces: dict[int, LivePiece] = {}
        self.neighbours: dict[NodeStream, Neighbour] = {}
        self.known: set[Address] = set()
        #: Nodes that sent a bad message or a forged piece.
        self.banned: set[bytes] = set()
        self.copies: dict[int, int] = {}
        self.bad_pieces = 0
        self.bytes_written = 0
        self._closed_up = 0  # bytes sent to neighbours that are gone
        self.ended = False
        self.ended_at: float | None = None
        #: The index of the signed empty piece, once held here.
        self.end_index: int | None = None
        #: Called with ``(index, data, now)`` for each piece verified (or published) here.
        self.on_piece: list[Callable[[int, bytes, float], None]] = []
        self._next_index = 0
        self._changed = asyncio.Event()

    @property
    def is_broadcaster(self) -> bool:
        return self.key is not None

    @property
    def edge(self) -> int | None:
        return self.window.edge

    def figures(self) -> dict[str, object]:
        return {
            "id": self.topic.hex(),
            "role": "broadcaster" if self.is_broadcaster else "viewer",
            "name": self.name,
            "edge": self.edge,
            "start": self.scheduler.start,
            "neighbours": len(self.neighbours),
            "bytes_up": sum(n.bytes_up for n in self.neighbours.values()) + self._closed_up,
            "bytes_down": sum(n.bytes_down for n in self.neighbours.values()),
            "bytes_written": self.bytes_written,
            "bad_pieces": self.bad_pieces,
            "ended": self.ended,
        }

    # -- the broadcaster ---------------------------------------------------------------

    def publish(self, data: bytes) -> int:
        """Sign ``data`` as the next piece (empty: the end) and announce it; its index."""
        assert self.key is not None, "only the broadcaster publishes"
        if self.ended:
            raise LiveError("the broadcast has ended")
        piece = sign_piece(self.key, self._next_index, data)
        self._next_index += 1
        self.bytes_written += len(data)
        self._store(piece, self.clock())
        return piece.index

    # -- neighbours ----------------------------------------------------------------------

    def hello(self, port: int) -> Hello:
        return Hello(self.topic, self.edge, port, self.name)

    def add_known(self, addresses: Iterable[Address]) -> None:
        """Addresses to dial, at most :data:`MAX_KNOWN` (a neighbour cannot flood them)."""
        for address in addresses:
            if len(self.known) >= MAX_KNOWN:
                return
            self.known.add(address)

    def neighbour_keys(self) -> set[bytes]:
        return {n.node_key for n in self.neighbours.values() if n.node_key is not None}

    def peer_addresses(self, excluding: Neighbour | None = None) -> Peers:
        addresses = [n.address for n in self.neighbours.values() if n is not excluding]
        return Peers(tuple(a for a in addresses if a is not None)[:50])

    def refusal(self) -> list[LiveMessage]:
        """What a node that takes no more neighbours (full, or its broadcast ended) sends
        after its hello, before closing: other participants, and the end piece when held,
        so a viewer that lost its neighbours before the end still learns of it."""
        messages: list[LiveMessage] = [self.peer_addresses()]
        end = None if self.end_index is None else self.pieces.get(self.end_index)
        if end is not None:
            messages.append(PieceMessage(end))
        return messages

    async def run(self, neighbour: Neighbour, hello: Hello) -> None:
        """Serve one neighbour's stream until it ends (the hellos are exchanged)."""
        stream = neighbour.stream
        if not self._admit(neighbour):
            stream.reset(CloseCode.NORMAL, "a stream between us exists")
            return
        self.neighbours[stream] = neighbour
        self.scheduler.add_peer(stream)
        if hello.name and not self.name:
            self.name = hello.name
        if hello.edge is not None:
            self.scheduler.peer_has(stream, hello.edge)
        self._send(neighbour, self.peer_addresses(excluding=neighbour))
        for index in sorted(self.pieces):  # what we hold of the window
            self._announce_to(neighbour, index)
        self.ask()
        try:
            while (raw := await stream.receive()) is not None:
                self._handle(neighbour, decode_live_message(raw))
        except LiveError as exc:
            log.info("live %s: neighbour dropped: %s", self.topic.hex()[:8], exc)
            stream.reset(CloseCode.PROTOCOL_ERROR, str(exc)[:200])
            if neighbour.node_key is not None:  # never again in this broadcast
                self.banned.add(neighbour.node_key)
            if neighbour.address is not None:
                self.known.discard(neighbour.address)
        finally:
            stream.close()
            self._forget(neighbour)

    def _admit(self, neighbour: Neighbour) -> bool:
        """One stream per pair of nodes: of two (both dialled at once), the one opened
        by the smaller node key stays, decided alike at both ends."""
        key = neighbour.node_key
        existing = next((n for n in self.neighbours.values() if key and n.node_key == key), None)
        if existing is None or key is None:
            return True
        opener_new = self.node_key if neighbour.outgoing else key
        opener_old = self.node_key if existing.outgoing else key
        if opener_new >= opener_old:
            return False
        existing.stream.reset(CloseCode.NORMAL, "a stream between us exists")
        self._forget(existing)
        return True

    def _forget(self, neighbour: Neighbour) -> None:
        if self.neighbours.pop(neighbour.stream, None) is None:
            return
        self._closed_up += neighbour.bytes_up
        self.scheduler.remove_peer(neighbour.stream)
        self.ask()

    def close(self) -> None:
        for stream in list(self.neighbours):
            stream.reset(CloseCode.NORMAL, "left the broadcast")
        self.ended = True
        self.ended_at = self.ended_at or self.clock()
        self._wake_readers()

    # -- messages ------------------------------------------------------------------------

    def _handle(self, neighbour: Neighbour, message: LiveMessage) -> None:
        stream = neighbour.stream
        if isinstance(message, Have):
            self.scheduler.peer_has(stream, message.index)
            self.ask()
        elif isinstance(message, Want):
            self._serve(neighbour, message.index)
        elif isinstance(message, Busy):
            self.scheduler.request_refused(stream, message.index, gone=True)
            self.ask()
        elif isinstance(message, PieceMessage):
            self._received(neighbour, message.piece)
        elif isinstance(message, Peers):
            self.add_known(message.addresses)
        # a second hello changes nothing

    def _serve(self, neighbour: Neighbour, index: int) -> None:
        piece = self.pieces.get(index)
        # The end piece is empty: the upload cap does not apply, and a viewer whose
        # neighbours are all slower than it must not wait for ever for the end.
        if piece is None or (
            self.is_broadcaster and piece.data and self.copies.get(index, 0) >= BROADCASTER_COPIES
        ):
            self._send(neighbour, Busy(index))
            return
        if self.is_broadcaster:
            self.copies[index] = self.copies.get(index, 0) + 1
        neighbour.bytes_up += len(piece.data)
        self._send(neighbour, PieceMessage(piece))

    def _received(self, neighbour: Neighbour, piece: LivePiece) -> None:
        try:
            verify_piece(self.public_key, piece)
        except LiveError:  # the stream is reset, the piece dropped
            self.bad_pieces += 1
            raise
        neighbour.bytes_down += len(piece.data)
        if piece.index in self.pieces or not self.window.accepts(piece.index):
            self.scheduler.piece_received(piece.index)
            return
        self._store(piece, self.clock())

    def _store(self, piece: LivePiece, now: float) -> None:
        self.pieces[piece.index] = piece
        for dropped in self.scheduler.piece_received(piece.index):
            self.pieces.pop(dropped, None)
            self.copies.pop(dropped, None)
        if not piece.data:
            self.ended, self.ended_at, self.end_index = True, now, piece.index
        for listener in self.on_piece:
            listener(piece.index, piece.data, now)
        for neighbour in list(self.neighbours.values()):
            self._announce_to(neighbour, piece.index)
        self._wake_readers()
        self.ask()

    def _announce_to(self, neighbour: Neighbour, index: int) -> None:
        if index not in neighbour.sent:
            neighbour.sent.add(index)
            if len(neighbour.sent) > 4 * self.window.size:
                low = index - self.window.size
                neighbour.sent.difference_update([i for i in neighbour.sent if i < low])
            self._send(neighbour, Have(index))

    def _send(self, neighbour: Neighbour, message: LiveMessage) -> None:
        if neighbour.stream.closed_for_sending:
            return
        with contextlib.suppress(Exception):  # a closing channel: its stream ends soon
            neighbour.stream.send(encode_live_message(message))

    def ask(self) -> None:
        """Send the requests the scheduler wants now (viewers only)."""
        if self.is_broadcaster:
            return
        for peer, index in self.scheduler.next_requests(self.clock(), self._busy):
            neighbour = self.neighbours.get(peer)  # type: ignore[call-overload]
            if neighbour is not None:
                self._send(neighbour, Want(index))

    def _busy(self, peer: Hashable) -> int:
        return self.scheduler.outstanding_to(peer)

    # -- readers -------------------------------------------------------------------------

    def _wake_readers(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_change(self, at_most: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(at_most):
                await self._changed.wait()

    def reader(self) -> LiveReader:
        return LiveReader(self)


class LiveReader:
    """The bytes of a broadcast in order, from the newest piece held when it starts.

    A missing piece is waited for while newer ones arrive, at most
    :data:`SKIP_AFTER` seconds (or until it leaves the window); then the reader
    skips to the next piece held, so a player never stalls for good on a hole.
    """

    def __init__(self, session: LiveSession) -> None:
        self.session = session
        self.position: int | None = None
        self.skipped = 0
        self._waiting_since: float | None = None

    async def next_chunk(self, still_wanted: Callable[[], bool] = lambda: True) -> bytes | None:
        """The next piece's bytes; None at the end of the broadcast or when not wanted."""
        session = self.session
        while still_wanted():
            pieces = session.pieces
            if self.position is None and pieces:
                self.position = max(pieces)
            if self.position is not None:
                piece = pieces.get(self.position)
                if piece is not None:
                    self.position += 1
                    self._waiting_since = None
                    return piece.data if piece.data else None
                if self._skip_hole():
                    continue
            if session.ended and (self.position is None or self.position > max(pieces, default=-1)):
                return None
            await session.wait_change(1.0)
        return None

    def _skip_hole(self) -> bool:
        """Move past a missing piece that newer ones have overtaken for too long."""
        assert self.position is not None
        later = [i for i in self.session.pieces if i > self.position]
        if not later:
            self._waiting_since = None
            return False
        now = self.session.clock()
        if self._waiting_since is None:
            self._waiting_since = now
        gone = not self.session.window.accepts(self.position)
        if not gone and now - self._waiting_since < SKIP_AFTER:
            return False
        self.skipped += min(later) - self.position
        self.position = min(later)
        self._waiting_since = None
        return True
