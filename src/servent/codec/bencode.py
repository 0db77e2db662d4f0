"""Strict, bounded bencode (BEP 3).

Decoding accepts only the canonical form: integers without leading zeros or
``-0``, string lengths without leading zeros, dictionary keys that are byte
strings in strictly increasing order, and nothing after the top-level value.
Because canonical input has exactly one encoding, ``encode(decode(x)) == x``
for every accepted ``x``; info-hashes are still computed over the bytes as
received (:func:`decode_with_raw`), never over a re-encoding.

Every bound is explicit (:class:`Limits`): input length, nesting depth, number
of values, integer digits. Hostile input raises a subclass of
:class:`~servent.errors.BencodeError` and nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias

from servent.errors import (
    BencodeError,
    BencodeLimitError,
    BencodeNonCanonicalError,
    BencodeTrailingDataError,
    BencodeTruncatedError,
)

BValue: TypeAlias = "int | bytes | list[BValue] | dict[bytes, BValue]"
"""A decoded bencode value."""

Encodable: TypeAlias = (
    "int | bytes | bytearray | memoryview | str"
    " | Sequence[Encodable] | Mapping[bytes | str, Encodable]"
)
"""What :func:`encode` accepts: ``str`` is encoded as UTF-8, tuples as lists."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds applied while decoding untrusted input."""

    max_length: int = 64 * 1024 * 1024
    max_depth: int = 64
    max_values: int = 2_000_000
    max_int_digits: int = 32


DEFAULT_LIMITS = Limits()
#: Limits for a single UDP datagram (DHT, UDP trackers).
DATAGRAM_LIMITS = Limits(max_length=64 * 1024, max_depth=16, max_values=10_000)

_DIGITS = frozenset(b"0123456789")


class _Decoder:
    __slots__ = ("capture", "captured", "data", "end", "limits", "path", "values")

    def __init__(self, data: bytes, limits: Limits, capture: tuple[bytes, ...] | None) -> None:
        self.data = data
        self.end = len(data)
        self.limits = limits
        self.values = 0
        self.capture = capture
        self.captured: tuple[int, int] | None = None
        self.path: list[bytes] = []

    def fail_truncated(self, pos: int) -> BencodeTruncatedError:
        return BencodeTruncatedError(f"input ends inside a value (offset {pos})")

    def value(self, pos: int, depth: int) -> tuple[BValue, int]:
        if pos >= self.end:
            raise self.fail_truncated(pos)
        self.values += 1
        if self.values > self.limits.max_values:
            raise BencodeLimitError(f"more than {self.limits.max_values} values")
        lead = self.data[pos]
        if lead in _DIGITS:
            return self.string(pos)
        if lead == 0x69:  # i
            return self.integer(pos)
        if depth >= self.limits.max_depth:
            raise BencodeLimitError(f"nesting deeper than {self.limits.max_depth}")
        if lead == 0x6C:  # l
            return self.list_(pos, depth)
        if lead == 0x64:  # d
            return self.dict_(pos, depth)
        raise BencodeError(f"unexpected byte {bytes([lead])!r} at offset {pos}")

    def string(self, pos: int) -> tuple[bytes, int]:
        data = self.data
        colon = data.find(b":", pos, pos + 21)
        if colon < 0:
            if data.find(b":", pos) < 0 and self.end - pos <= 20:
                raise self.fail_truncated(pos)
            raise BencodeError(f"string length without ':' at offset {pos}")
        digits = data[pos:colon]
        if not digits.isdigit():
            raise BencodeError(f"bad string length {digits!r} at offset {pos}")
        if len(digits) > 1 and digits[0] == 0x30:
            raise BencodeNonCanonicalError(f"string length with leading zero at offset {pos}")
        length = int(digits)
        start = colon + 1
        stop = start + length
        if stop > self.end:
            raise self.fail_truncated(pos)
        return data[start:stop], stop

    def integer(self, pos: int) -> tuple[int, int]:
        data = self.data
        stop = data.find(b"e", pos + 1, pos + 3 + self.limits.max_int_digits)
        if stop < 0:
            if data.find(b"e", pos + 1) < 0:
                raise self.fail_truncated(pos)
            raise BencodeLimitError(f"integer longer than {self.limits.max_int_digits} digits")
        body = data[pos + 1 : stop]
        negative = body[:1] == b"-"
        digits = body[1:] if negative else body
        if not digits.isdigit():
            raise BencodeError(f"bad integer {body!r} at offset {pos}")
        if digits[0] == 0x30 and (len(digits) > 1 or negative):
            raise BencodeNonCanonicalError(f"non-canonical integer {body!r} at offset {pos}")
        return int(body), stop + 1

    def list_(self, pos: int, depth: int) -> tuple[list[BValue], int]:
        data = self.data
        items: list[BValue] = []
        pos += 1
        while True:
            if pos >= self.end:
                raise self.fail_truncated(pos)
            if data[pos] == 0x65:  # e
                return items, pos + 1
            item, pos = self.value(pos, depth + 1)
            items.append(item)

    def dict_(self, pos: int, depth: int) -> tuple[dict[bytes, BValue], int]:
        data = self.data
        result: dict[bytes, BValue] = {}
        pos += 1
        previous: bytes | None = None
        capture = self.capture
        watch = (
            capture is not None
            and depth < len(capture)
            and len(self.path) == depth
            and self.path == list(capture[:depth])
        )
        while True:
            if pos >= self.end:
                raise self.fail_truncated(pos)
            if data[pos] == 0x65:  # e
                return result, pos + 1
            if data[pos] not in _DIGITS:
                raise BencodeError(f"dictionary key is not a string at offset {pos}")
            self.values += 1
            key, pos = self.string(pos)
            if previous is not None and key <= previous:
                if key == previous:
                    raise BencodeNonCanonicalError(f"duplicate dictionary key {key!r}")
                raise BencodeNonCanonicalError(f"dictionary keys out of order at {key!r}")
            previous = key
            if watch and capture is not None and key == capture[depth]:
                self.path.append(key)
                start = pos
                result[key], pos = self.value(pos, depth + 1)
                self.path.pop()
                if depth + 1 == len(capture):
                    self.captured = (start, pos)
            else:
                result[key], pos = self.value(pos, depth + 1)


def _check_length(data: bytes, limits: Limits) -> None:
    if len(data) > limits.max_length:
        raise BencodeLimitError(f"input of {len(data)} bytes exceeds {limits.max_length}")


def decode(data: bytes | bytearray | memoryview, limits: Limits = DEFAULT_LIMITS) -> BValue:
    """Decode one canonical bencoded value that spans all of ``data``."""
    raw = bytes(data)
    _check_length(raw, limits)
    decoder = _Decoder(raw, limits, None)
    value, end = decoder.value(0, 0)
    if end != len(raw):
        raise BencodeTrailingDataError(f"{len(raw) - end} bytes after the value")
    return value


def decode_dict(
    data: bytes, limits: Limits, error: type[Exception], what: str = "message"
) -> dict[bytes, BValue]:
    """One dictionary from the network, bounded by ``limits``: anything longer, not
    bencode or not a dictionary raises ``error`` (each protocol its own error type)."""
    if len(data) > limits.max_length:
        raise error(f"{what} of {len(data)} bytes: more than {limits.max_length}")
    try:
        value = decode(data, limits)
    except BencodeError as exc:
        raise error(f"{what} does not decode: {exc}") from None
    if not isinstance(value, dict):
        raise error(f"{what} is not a dictionary")
    return value


def decode_prefix(
    data: bytes | bytearray | memoryview, limits: Limits = DEFAULT_LIMITS
) -> tuple[BValue, int]:
    """Decode the value at the start of ``data``; return it and where it ends.

    Used where a bencoded value is followed by other bytes (``ut_metadata``
    messages carry a dictionary followed by a raw piece).
    """
    raw = bytes(data)
    _check_length(raw, limits)
    return _Decoder(raw, limits, None).value(0, 0)


def decode_with_raw(
    data: bytes | bytearray | memoryview,
    path: Sequence[bytes],
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[BValue, bytes | None]:
    """Decode ``data`` and also return the exact bytes of the value at ``path``.

    ``path`` is a sequence of dictionary keys from the top level, e.g.
    ``(b"info",)``. The raw bytes are ``None`` when there is no such value.
    """
    raw = bytes(data)
    _check_length(raw, limits)
    if not path:
        return decode(raw, limits), raw
    decoder = _Decoder(raw, limits, tuple(path))
    value, end = decoder.value(0, 0)
    if end != len(raw):
        raise BencodeTrailingDataError(f"{len(raw) - end} bytes after the value")
    if decoder.captured is None:
        return value, None
    start, stop = decoder.captured
    return value, raw[start:stop]


def encode(value: Encodable) -> bytes:
    """Encode ``value`` canonically (dictionary keys sorted as raw bytes)."""
    out: list[bytes] = []
    _encode_into(value, out, 0)
    return b"".join(out)


_MAX_ENCODE_DEPTH = 512


def _encode_into(value: Encodable, out: list[bytes], depth: int) -> None:
    if depth > _MAX_ENCODE_DEPTH:
        raise BencodeLimitError("value nested too deeply to encode")
    if isinstance(value, bytes):
        out.append(b"%d:" % len(value))
        out.append(value)
    elif isinstance(value, str):
        encoded = value.encode("utf-8")
        out.append(b"%d:" % len(encoded))
        out.append(encoded)
    elif isinstance(value, bool):
        raise BencodeError("booleans have no bencode form; use 0 or 1")
    elif isinstance(value, int):
        out.append(b"i%de" % value)
    elif isinstance(value, (bytearray, memoryview)):
        chunk = bytes(value)
        out.append(b"%d:" % len(chunk))
        out.append(chunk)
    elif isinstance(value, Mapping):
        items: list[tuple[bytes, Encodable]] = []
        for raw_key, item in value.items():
            if isinstance(raw_key, str):
                key = raw_key.encode("utf-8")
            elif isinstance(raw_key, bytes):
                key = raw_key
            else:
                raise BencodeError(f"dictionary key {raw_key!r} is not a string")
            items.append((key, item))
        items.sort(key=lambda pair: pair[0])
        out.append(b"d")
        previous: bytes | None = None
        for key, item in items:
            if key == previous:
                raise BencodeError(f"duplicate dictionary key {key!r}")
            previous = key
            out.append(b"%d:" % len(key))
            out.append(key)
            _encode_into(item, out, depth + 1)
        out.append(b"e")
    elif isinstance(value, Sequence):
        out.append(b"l")
        for item in value:
            _encode_into(item, out, depth + 1)
        out.append(b"e")
    else:
        raise BencodeError(f"cannot bencode a {type(value).__name__}")
