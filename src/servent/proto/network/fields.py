"""Typed reads of bencoded dictionaries from the network (bounded, specific errors)."""

from __future__ import annotations

from servent.codec.bencode import BValue, Limits, decode_dict
from servent.errors import NetworkError

__all__ = ["MAX_MESSAGE", "as_dict", "get_bytes", "get_int", "get_list", "get_text"]

#: A frame or a roster, encoded.
MAX_MESSAGE = 60_000
_LIMITS = Limits(max_length=MAX_MESSAGE, max_depth=8, max_values=20_000)


def as_dict(data: bytes, error: type[NetworkError] = NetworkError) -> dict[bytes, BValue]:
    """Decode one bencoded dictionary of at most 60,000 bytes."""
    return decode_dict(data, _LIMITS, error)


def get_bytes(
    values: dict[bytes, BValue],
    key: bytes,
    *,
    length: int | None = None,
    max_length: int = MAX_MESSAGE,
    error: type[NetworkError] = NetworkError,
) -> bytes:
    value = values.get(key)
    if not isinstance(value, bytes):
        raise error(f"{key.decode()!r} is missing or not a string")
    if length is not None and len(value) != length:
        raise error(f"{key.decode()!r} has {len(value)} bytes, not {length}")
    if len(value) > max_length:
        raise error(f"{key.decode()!r} is longer than {max_length} bytes")
    return value


def get_text(
    values: dict[bytes, BValue],
    key: bytes,
    *,
    max_length: int,
    error: type[NetworkError] = NetworkError,
) -> str:
    raw = get_bytes(values, key, max_length=max_length, error=error)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{key.decode()!r} is not UTF-8") from None


def get_int(
    values: dict[bytes, BValue],
    key: bytes,
    *,
    low: int = 0,
    high: int = 2**53,
    error: type[NetworkError] = NetworkError,
) -> int:
    value = values.get(key)
    if not isinstance(value, int) or not low <= value < high:
        raise error(f"{key.decode()!r} is missing or not an integer in {low}..{high - 1}")
    return value


def get_list(
    values: dict[bytes, BValue],
    key: bytes,
    *,
    max_items: int,
    error: type[NetworkError] = NetworkError,
) -> list[BValue]:
    value = values.get(key, [])
    if not isinstance(value, list):
        raise error(f"{key.decode()!r} is not a list")
    if len(value) > max_items:
        raise error(f"{key.decode()!r} has more than {max_items} items")
    return value
