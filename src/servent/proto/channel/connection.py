"""One node channel connection as a sans-IO state machine (h11 / aioquic style).

Feed bytes with :meth:`ChannelConnection.receive_data`, pull events with
:meth:`~ChannelConnection.next_event` until ``None``, write
:meth:`~ChannelConnection.data_to_send` to the socket, and call
:meth:`~ChannelConnection.handle_timer` at :meth:`~ChannelConnection.get_timer`.
Time is always passed in.  The wire format is ``docs/node-channel.md``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Container
from dataclasses import dataclass
from enum import Enum, auto
from typing import ClassVar

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from servent.codec.node_id import format_node_id
from servent.proto.channel.errors import (
    ChannelAuthError,
    ChannelError,
    ChannelHandshakeError,
    ChannelProtocolError,
    ChannelStateError,
    ChannelTimeoutError,
    FrameTooLargeError,
)
from servent.proto.channel.events import (
    ChannelEvent,
    ConnectionClosed,
    HandshakeComplete,
    MessageReceived,
    StreamEnded,
    StreamOpened,
    StreamReset,
)
from servent.proto.channel.frames import (
    FRAME_LENGTH_SIZE,
    HANDSHAKE_LENGTH_SIZE,
    MAGIC,
    MAX_BODY,
    MAX_CIPHERTEXT,
    MAX_HANDSHAKE_MESSAGE,
    MIN_CIPHERTEXT,
    TAG_SIZE,
    CloseCode,
    FrameType,
    PlainFrame,
    check_protocol_name,
    decode_coded,
    decode_plain,
    encode_coded,
    encode_plain,
)
from servent.proto.channel.noise import CipherState, HandshakeXX, LocalKeys

__all__ = ["ChannelConfig", "ChannelConnection", "Phase"]


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """Timeouts and limits (section 6 and 7 of the wire format)."""

    handshake_timeout: float = 10.0
    keepalive_interval: float = 30.0
    dead_timeout: float = 90.0
    idle_timeout: float = 300.0
    max_peer_streams: int = 64
    rekey_after_bytes: int = 1 << 30
    rekey_after_frames: int = 1 << 20
    rekey_interval: float = 3600.0


class Phase(Enum):
    AWAIT_MAGIC = auto()
    AWAIT_MESSAGE_1 = auto()
    AWAIT_MESSAGE_2 = auto()
    AWAIT_MESSAGE_3 = auto()
    OPEN = auto()
    CLOSED = auto()


@dataclass(slots=True)
class _Stream:
    protocol: str
    by_peer: bool
    local_closed: bool = False
    remote_closed: bool = False


def _framed(message: bytes) -> bytes:
    return len(message).to_bytes(HANDSHAKE_LENGTH_SIZE, "big") + message


class ChannelConnection:
    """One side of a node channel; ``initiator`` dialled, the responder accepted.

    ``protocols`` answers "do we serve this protocol name?" for streams the
    peer opens (a registry); ``expected_peer`` (initiator) is the Ed25519 key
    of the node we meant to reach: another one is refused before we reveal ours.
    """

    def __init__(
        self,
        keys: LocalKeys,
        *,
        initiator: bool,
        now: float,
        expected_peer: bytes | None = None,
        protocols: Container[str] = frozenset(),
        config: ChannelConfig | None = None,
        ephemeral: X25519PrivateKey | None = None,
    ) -> None:
        """``ephemeral`` fixes the handshake's ephemeral key: for fuzzing and test
        vectors only (a fresh one is made otherwise)."""
        self.keys = keys
        self.initiator = initiator
        self.expected_peer = expected_peer
        self.protocols = protocols
        self.config = config or ChannelConfig()
        self.phase = Phase.AWAIT_MAGIC
        #: The peer's Ed25519 key once the handshake completed.
        self.peer_key: bytes | None = None
        #: What ended the connection when the peer broke the rules.
        self.error: ChannelError | None = None
        self._handshake = HandshakeXX(
            keys, initiator=initiator, prologue=MAGIC, ephemeral=ephemeral
        )
        self._send: CipherState | None = None
        self._receive: CipherState | None = None
        self._in = bytearray()
        self._out = bytearray()
        self._events: deque[ChannelEvent] = deque()
        self._now = self._started = self._last_received = self._last_sent = now
        self._last_activity = self._key_since = now
        self._sent_under_key = self._frames_under_key = 0
        self._pings = 0
        self._streams: dict[int, _Stream] = {}
        self._next_stream = 1 if initiator else 2
        self._last_peer_stream = 0
        if initiator:
            self._out += MAGIC + _framed(self._handshake.write_1())

    # -- input ---------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the socket; a violation closes the connection (see :attr:`error`)."""
        if self.phase is Phase.CLOSED:
            return
        self._now = now
        self._in += data
        try:
            self._process()
        except ChannelError as exc:
            self._fail(exc)

    def _process(self) -> None:
        while self.phase is not Phase.CLOSED:
            if self.phase is Phase.AWAIT_MAGIC:
                if not self._take_magic():
                    return
            elif self.phase is Phase.OPEN:
                self._read_frames()
                return
            else:
                message = self._take_handshake_message()
                if message is None:
                    return
                self._HANDSHAKE_STEPS[self.phase](self, message)

    def _take_magic(self) -> bool:
        seen = bytes(self._in[: len(MAGIC)])
        if not MAGIC.startswith(seen):
            raise ChannelHandshakeError("not a node channel (wrong magic)")
        if len(seen) < len(MAGIC):
            return False
        del self._in[: len(MAGIC)]
        self.phase = Phase.AWAIT_MESSAGE_2 if self.initiator else Phase.AWAIT_MESSAGE_1
        return True

    def _take_handshake_message(self) -> bytes | None:
        if len(self._in) < HANDSHAKE_LENGTH_SIZE:
            return None
        length = int.from_bytes(self._in[:HANDSHAKE_LENGTH_SIZE], "big")
        if length > MAX_HANDSHAKE_MESSAGE:
            raise FrameTooLargeError(f"handshake message of {length} bytes")
        end = HANDSHAKE_LENGTH_SIZE + length
        if len(self._in) < end:
            return None
        message = bytes(self._in[HANDSHAKE_LENGTH_SIZE:end])
        del self._in[:end]
        return message

    def _on_message_1(self, message: bytes) -> None:
        self._handshake.read_1(message)
        self._out += MAGIC + _framed(self._handshake.write_2())
        self.phase = Phase.AWAIT_MESSAGE_3

    def _on_message_2(self, message: bytes) -> None:
        peer = self._handshake.read_2(message)
        if self.expected_peer is not None and peer != self.expected_peer:
            raise ChannelAuthError(
                f"expected node {format_node_id(self.expected_peer)}, "
                f"reached {format_node_id(peer)}"
            )
        self._out += _framed(self._handshake.write_3())
        self._complete(peer)

    def _on_message_3(self, message: bytes) -> None:
        self._complete(self._handshake.read_3(message))

    _HANDSHAKE_STEPS: ClassVar[dict[Phase, Callable[[ChannelConnection, bytes], None]]] = {
        Phase.AWAIT_MESSAGE_1: _on_message_1,
        Phase.AWAIT_MESSAGE_2: _on_message_2,
        Phase.AWAIT_MESSAGE_3: _on_message_3,
    }

    def _complete(self, peer: bytes) -> None:
        self._send, self._receive = self._handshake.split()
        self.peer_key = peer
        self.phase = Phase.OPEN
        self._last_received = self._last_sent = self._last_activity = self._now
        self._key_since = self._now
        self._events.append(HandshakeComplete(peer, self._handshake.handshake_hash))

    def _read_frames(self) -> None:
        buffer, position = self._in, 0
        receive = self._receive
        assert receive is not None
        try:
            while self.phase is Phase.OPEN and len(buffer) - position >= FRAME_LENGTH_SIZE:
                header = bytes(buffer[position : position + FRAME_LENGTH_SIZE])
                length = int.from_bytes(header, "big")
                if length > MAX_CIPHERTEXT:
                    raise FrameTooLargeError(f"frame of {length} bytes (at most {MAX_CIPHERTEXT})")
                if length < MIN_CIPHERTEXT:
                    raise ChannelProtocolError(f"frame of {length} bytes is shorter than a header")
                start = position + FRAME_LENGTH_SIZE
                if len(buffer) - start < length:
                    break
                position = start + length
                plaintext = receive.decrypt(header, bytes(buffer[start:position]))
                self._last_received = self._now
                self._on_frame(decode_plain(plaintext))
        finally:
            del buffer[:position]

    # -- frames from the peer ------------------------------------------------

    def _on_frame(self, frame: PlainFrame) -> None:
        if not isinstance(frame.kind, FrameType):
            return  # an extension frame type: ignored by version 1
        self._FRAME_HANDLERS[frame.kind](self, frame)

    def _on_ping(self, frame: PlainFrame) -> None:
        self._queue(FrameType.PONG, 0, frame.body)

    def _on_pong(self, frame: PlainFrame) -> None:
        """Nothing to do: any frame received already proves the peer alive."""

    def _on_goodbye(self, frame: PlainFrame) -> None:
        code, reason = decode_coded(frame.body)
        self.phase = Phase.CLOSED
        self._events.append(ConnectionClosed(code, reason, by_peer=True))

    def _on_rekey(self, frame: PlainFrame) -> None:
        assert self._receive is not None
        self._receive.rekey()

    def _on_open(self, frame: PlainFrame) -> None:
        stream_id = frame.stream_id
        if stream_id % 2 == self._next_stream % 2 or stream_id <= self._last_peer_stream:
            raise ChannelProtocolError(f"OPEN with stream id {stream_id} out of order")
        self._last_peer_stream = stream_id
        name = check_protocol_name(frame.body)
        if name not in self.protocols:
            self._queue_reset(stream_id, CloseCode.UNKNOWN_PROTOCOL, f"unknown protocol {name}")
            return
        if sum(s.by_peer for s in self._streams.values()) >= self.config.max_peer_streams:
            self._queue_reset(stream_id, CloseCode.REFUSED, "too many streams")
            return
        self._streams[stream_id] = _Stream(name, by_peer=True)
        self._last_activity = self._now
        self._events.append(StreamOpened(stream_id, name))

    def _stream_of(self, frame: PlainFrame) -> _Stream | None:
        """The open stream a frame is for; None for one that closed (a harmless race)."""
        stream_id = frame.stream_id
        stream = self._streams.get(stream_id)
        if stream is not None:
            return stream
        ours = stream_id % 2 == self._next_stream % 2
        if stream_id < self._next_stream if ours else stream_id <= self._last_peer_stream:
            return None
        kind = FrameType(frame.kind).name
        raise ChannelProtocolError(f"{kind} for stream {stream_id}, which was never opened")

    def _on_data(self, frame: PlainFrame) -> None:
        stream = self._stream_of(frame)
        if stream is None:
            return
        if stream.remote_closed:
            raise ChannelProtocolError(f"DATA on stream {frame.stream_id} after its CLOSE")
        self._last_activity = self._now
        self._events.append(MessageReceived(frame.stream_id, frame.body))

    def _on_close(self, frame: PlainFrame) -> None:
        stream = self._stream_of(frame)
        if stream is None or stream.remote_closed:
            return
        stream.remote_closed = True
        self._events.append(StreamEnded(frame.stream_id))
        self._forget_if_done(frame.stream_id, stream)

    def _on_reset(self, frame: PlainFrame) -> None:
        code, reason = decode_coded(frame.body)
        if self._stream_of(frame) is None:
            return
        del self._streams[frame.stream_id]
        self._last_activity = self._now
        self._events.append(StreamReset(frame.stream_id, code, reason))

    _FRAME_HANDLERS: ClassVar[dict[FrameType, Callable[[ChannelConnection, PlainFrame], None]]] = {
        FrameType.PING: _on_ping,
        FrameType.PONG: _on_pong,
        FrameType.GOODBYE: _on_goodbye,
        FrameType.REKEY: _on_rekey,
        FrameType.OPEN: _on_open,
        FrameType.DATA: _on_data,
        FrameType.CLOSE: _on_close,
        FrameType.RESET: _on_reset,
    }

    def _forget_if_done(self, stream_id: int, stream: _Stream) -> None:
        if stream.local_closed and stream.remote_closed:
            del self._streams[stream_id]
            self._last_activity = self._now

    # -- output --------------------------------------------------------------

    def _queue(self, kind: FrameType, stream_id: int, body: bytes = b"") -> None:
        send = self._send
        assert send is not None
        if kind is not FrameType.REKEY and self._rekey_due():
            self._queue(FrameType.REKEY, 0)
            send.rekey()
            self._sent_under_key = self._frames_under_key = 0
            self._key_since = self._now
        plaintext = encode_plain(kind, stream_id, body)
        header = (len(plaintext) + TAG_SIZE).to_bytes(FRAME_LENGTH_SIZE, "big")
        self._out += header
        self._out += send.encrypt(header, plaintext)
        self._last_sent = self._now
        self._sent_under_key += len(plaintext)
        self._frames_under_key += 1

    def _rekey_due(self) -> bool:
        config = self.config
        return (
            self._sent_under_key >= config.rekey_after_bytes
            or self._frames_under_key >= config.rekey_after_frames
            or self._now - self._key_since >= config.rekey_interval
        )

    def _queue_reset(self, stream_id: int, code: CloseCode, reason: str) -> None:
        self._queue(FrameType.RESET, stream_id, encode_coded(code, reason))

    def data_to_send(self) -> bytes:
        """Everything queued for the socket (handshake messages and frames)."""
        out = bytes(self._out)
        self._out.clear()
        return out

    def next_event(self) -> ChannelEvent | None:
        return self._events.popleft() if self._events else None

    # -- what the owner asks for -----------------------------------------------

    def _require_open(self) -> None:
        if self.phase is not Phase.OPEN:
            raise ChannelStateError(f"the channel is not open ({self.phase.name.lower()})")

    def open_stream(self, protocol: str) -> int:
        """Queue OPEN for ``protocol``; messages may follow at once.  Returns the stream id."""
        self._require_open()
        name = check_protocol_name(protocol.encode("ascii", "replace"))
        stream_id = self._next_stream
        if stream_id >= 1 << 32:
            raise ChannelStateError("stream ids exhausted")
        self._next_stream += 2
        self._streams[stream_id] = _Stream(name, by_peer=False)
        self._last_activity = self._now
        self._queue(FrameType.OPEN, stream_id, name.encode("ascii"))
        return stream_id

    def _own_stream(self, stream_id: int) -> _Stream:
        self._require_open()
        stream = self._streams.get(stream_id)
        if stream is None:
            raise ChannelStateError(f"stream {stream_id} is not open")
        return stream

    def send_message(self, stream_id: int, data: bytes) -> None:
        stream = self._own_stream(stream_id)
        if stream.local_closed:
            raise ChannelStateError(f"stream {stream_id} was closed for sending")
        if len(data) > MAX_BODY:
            raise ChannelStateError(f"message of {len(data)} bytes (at most {MAX_BODY})")
        self._last_activity = self._now
        self._queue(FrameType.DATA, stream_id, data)

    def close_stream(self, stream_id: int) -> None:
        """We send nothing more on this stream (the peer still may)."""
        stream = self._own_stream(stream_id)
        if not stream.local_closed:
            stream.local_closed = True
            self._queue(FrameType.CLOSE, stream_id)
            self._forget_if_done(stream_id, stream)

    def reset_stream(self, stream_id: int, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        self._own_stream(stream_id)
        del self._streams[stream_id]
        self._last_activity = self._now
        self._queue(FrameType.RESET, stream_id, encode_coded(code, reason))

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Queue GOODBYE (when open) and end the connection; the owner then closes the socket."""
        if self.phase is Phase.CLOSED:
            return
        if self.phase is Phase.OPEN:
            self._queue(FrameType.GOODBYE, 0, encode_coded(code, reason))
        self.phase = Phase.CLOSED
        self._events.append(ConnectionClosed(code, reason, by_peer=False, error=self.error))

    def _fail(self, error: ChannelError) -> None:
        self.error = error
        timeout = isinstance(error, ChannelTimeoutError)
        self.close(CloseCode.TIMEOUT if timeout else CloseCode.PROTOCOL_ERROR, str(error))

    # -- time ------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` wants to run next (``None``: closed)."""
        config = self.config
        if self.phase is Phase.CLOSED:
            return None
        if self.phase is not Phase.OPEN:
            return self._started + config.handshake_timeout
        wake = min(
            self._last_sent + config.keepalive_interval,
            self._last_received + config.dead_timeout,
        )
        if not self._streams:
            wake = min(wake, self._last_activity + config.idle_timeout)
        return wake

    def handle_timer(self, now: float) -> None:
        self._now = now
        config = self.config
        if self.phase is Phase.CLOSED:
            return
        if self.phase is not Phase.OPEN:
            if now >= self._started + config.handshake_timeout:
                self._fail(ChannelTimeoutError("the handshake took too long"))
            return
        if now >= self._last_received + config.dead_timeout:
            self._fail(ChannelTimeoutError(f"nothing received for {config.dead_timeout:.0f} s"))
        elif not self._streams and now >= self._last_activity + config.idle_timeout:
            self.close(CloseCode.IDLE, "idle")
        elif now >= self._last_sent + config.keepalive_interval:
            self._pings += 1
            self._queue(FrameType.PING, 0, self._pings.to_bytes(8, "big"))
