"""Control messages and admission rules of ``servent/relay/1`` and ``servent/holepunch/1``.

See ``docs/relay.md``.  Pure: the codecs read small bencoded dictionaries
with hostile input in mind (bounded size, checked types), and
:class:`RelayBook` decides what a relay accepts (reservations, circuits,
introductions) from counts and a clock passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from servent.codec import bencode
from servent.codec.compact import Address, decode_peer
from servent.errors import DecodeError, ProtocolError

RELAY_PROTOCOL = "servent/relay/1"
PUNCH_PROTOCOL = "servent/holepunch/1"
MAX_CONTROL = 256
_CONTROL_LIMITS = bencode.Limits(max_length=MAX_CONTROL, max_depth=4, max_values=64)
KEY_SIZE = 32
MAX_RESERVATIONS = 64
MAX_CIRCUITS = 16
#: An introduction per asking node at most this often, and this many under way at once.
INTRODUCTION_INTERVAL = 2.0
MAX_INTRODUCTIONS = 8

Message = dict[bytes, object]


class RelayMessageError(ProtocolError):
    """A malformed relay or introduction control message."""


class RelayErrorCode(IntEnum):
    NO_SUCH_NODE = 1
    RELAY_OFF = 2
    REFUSED = 3
    SELF = 4
    FULL = 5


def encode_control(message: Message) -> bytes:
    data = bencode.encode(message)  # type: ignore[arg-type]
    if len(data) > MAX_CONTROL:
        raise ValueError(f"control message of {len(data)} bytes exceeds {MAX_CONTROL}")
    return data


def decode_control(data: bytes) -> Message:
    """A bounded bencoded dictionary; :class:`RelayMessageError` otherwise."""
    return dict(bencode.decode_dict(data, _CONTROL_LIMITS, RelayMessageError, "control message"))


def field_key(message: Message, name: bytes) -> bytes:
    value = message.get(name)
    if not isinstance(value, bytes) or len(value) != KEY_SIZE:
        raise RelayMessageError(f"{name.decode()} must be a {KEY_SIZE}-byte node key")
    return value


def field_port(message: Message, name: bytes = b"port") -> int:
    value = message.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 0xFFFF:
        raise RelayMessageError(f"{name.decode()} must be a port in 1..65535")
    return value


def field_address(message: Message, name: bytes = b"addr") -> Address:
    value = message.get(name)
    if not isinstance(value, bytes):
        raise RelayMessageError(f"{name.decode()} must be a compact address")
    try:
        address = decode_peer(value)
    except DecodeError as exc:
        raise RelayMessageError(f"bad {name.decode()}: {exc}") from exc
    if address[1] == 0:
        raise RelayMessageError(f"{name.decode()} has port 0")
    return address


def field_int(message: Message, name: bytes) -> int | None:
    value = message.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**16:
        raise RelayMessageError(f"{name.decode()} must be a small integer")
    return value


def field_op(message: Message) -> str:
    op = message.get(b"op")
    if op not in (b"reserve", b"connect", b"incoming"):
        raise RelayMessageError(f"unknown op {op!r}")
    assert isinstance(op, bytes)
    return op.decode()


def answer(ok: bool, error: RelayErrorCode | None = None) -> bytes:
    message: Message = {b"ok": int(ok)}
    if error is not None:
        message[b"error"] = int(error)
    return encode_control(message)


def read_answer(data: bytes) -> RelayErrorCode | None:
    """None when the answer says ok; else its error code."""
    message = decode_control(data)
    ok = message.get(b"ok")
    if ok not in (0, 1) or isinstance(ok, bool):
        raise RelayMessageError("an answer needs ok: 0 or 1")
    if ok == 1:
        return None
    code = field_int(message, b"error")
    try:
        return RelayErrorCode(code if code is not None else RelayErrorCode.REFUSED)
    except ValueError:
        return RelayErrorCode.REFUSED


# -- what a relay admits -----------------------------------------------------------


@dataclass
class RelayBook:
    """Reservations, circuits and introductions a relay holds, and its limits."""

    enabled: bool = False
    max_circuits: int = MAX_CIRCUITS
    max_reservations: int = MAX_RESERVATIONS
    reservations: set[bytes] = field(default_factory=set)
    circuits: int = 0
    introductions: int = 0
    _last_introduction: dict[bytes, float] = field(default_factory=dict)

    def reserve(self, key: bytes) -> RelayErrorCode | None:
        if not self.enabled:
            return RelayErrorCode.RELAY_OFF
        if key not in self.reservations and len(self.reservations) >= self.max_reservations:
            return RelayErrorCode.FULL
        self.reservations.add(key)
        return None

    def release(self, key: bytes) -> None:
        self.reservations.discard(key)

    def open_circuit(self, source: bytes, target: bytes) -> RelayErrorCode | None:
        """Whether a circuit from ``source`` to ``target`` may start (counted if so)."""
        if not self.enabled:
            return RelayErrorCode.RELAY_OFF
        if source == target:
            return RelayErrorCode.SELF
        if target not in self.reservations:
            return RelayErrorCode.NO_SUCH_NODE
        if self.circuits >= self.max_circuits:
            return RelayErrorCode.FULL
        self.circuits += 1
        return None

    def close_circuit(self) -> None:
        self.circuits = max(0, self.circuits - 1)

    def introduce(
        self, source: bytes, target: bytes, *, target_connected: bool, now: float
    ) -> RelayErrorCode | None:
        """Whether an introduction of ``source`` to ``target`` may start (counted if so)."""
        if not self.enabled:
            return RelayErrorCode.RELAY_OFF
        if source == target:
            return RelayErrorCode.SELF
        if not target_connected:
            return RelayErrorCode.NO_SUCH_NODE
        last = self._last_introduction.get(source)
        if self.introductions >= MAX_INTRODUCTIONS or (
            last is not None and now - last < INTRODUCTION_INTERVAL
        ):
            return RelayErrorCode.FULL
        if len(self._last_introduction) >= 4 * MAX_RESERVATIONS:
            self._last_introduction.clear()  # bounded memory; the rate limit restarts
        self._last_introduction[source] = now
        self.introductions += 1
        return None

    def introduction_done(self) -> None:
        self.introductions = max(0, self.introductions - 1)
