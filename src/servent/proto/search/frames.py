"""The messages of ``servent/search/1``: one bencoded dictionary each, every bound checked."""

from __future__ import annotations

from dataclasses import dataclass

from servent.codec.bencode import BValue, Encodable, Limits, decode, encode
from servent.errors import BencodeError
from servent.proto.search.entry import SearchEntry, SearchProtocolError, entry_from_value

__all__ = [
    "INDEX",
    "LOCAL",
    "MAX_MESSAGE",
    "ROUTE",
    "Query",
    "ResultBatch",
    "SearchMessage",
    "Store",
    "StoreAnswer",
    "SupernodeAsk",
    "SupernodeList",
    "decode_message",
    "encode_message",
]

MAX_MESSAGE = 60_000
MAX_QUERY = 200
MAX_LIMIT = 200
MAX_BATCH = 50
MAX_STORE = 100
MAX_SUPERNODES = 200
QUERY_ID_SIZE = 8
#: Query scopes: answer from your local index; from your keyword index (you are one of
#: the responsible supernodes); or route it (a leaf asks its supernode, which asks
#: the responsible supernodes and relays their answers).
LOCAL, INDEX, ROUTE = 0, 1, 2
LIMITS = Limits(max_length=MAX_MESSAGE, max_depth=6, max_values=6000)


@dataclass(frozen=True, slots=True)
class Query:
    id: bytes
    text: str
    people: bool = False
    limit: int = 50
    scope: int = 0  # LOCAL, INDEX or ROUTE


@dataclass(frozen=True, slots=True)
class ResultBatch:
    id: bytes
    entries: tuple[SearchEntry, ...]
    last: bool = True


@dataclass(frozen=True, slots=True)
class Store:
    entries: tuple[SearchEntry, ...]
    forward: bool = False


@dataclass(frozen=True, slots=True)
class StoreAnswer:
    stored: int
    refused: int


@dataclass(frozen=True, slots=True)
class SupernodeAsk:
    is_supernode: bool
    port: int


@dataclass(frozen=True, slots=True)
class SupernodeList:
    supernodes: tuple[tuple[bytes, bytes], ...]  # (node key, compact address)


SearchMessage = Query | ResultBatch | Store | StoreAnswer | SupernodeAsk | SupernodeList


def _fields(message: SearchMessage) -> dict[bytes | str, Encodable]:
    match message:
        case Query():
            return {
                b"y": b"q", b"id": message.id, b"q": message.text,
                b"k": b"p" if message.people else b"f", b"n": message.limit,
                b"l": message.scope,
            }  # fmt: skip
        case ResultBatch():
            return {
                b"y": b"r", b"id": message.id, b"e": int(message.last),
                b"r": [entry.to_dict() for entry in message.entries],
            }  # fmt: skip
        case Store():
            entries = [entry.to_dict() for entry in message.entries]
            return {b"y": b"s", b"e": entries, b"fw": int(message.forward)}
        case StoreAnswer():
            return {b"y": b"a", b"ok": message.stored, b"no": message.refused}
        case SupernodeAsk():
            return {b"y": b"sn", b"me": int(message.is_supernode), b"p": message.port}
        case SupernodeList():
            return {b"y": b"sl", b"l": [{b"k": k, b"a": a} for k, a in message.supernodes]}
    raise TypeError(f"not a search message: {message!r}")


def encode_message(message: SearchMessage) -> bytes:
    data = encode(_fields(message))
    if len(data) > MAX_MESSAGE:
        raise SearchProtocolError(f"search message of {len(data)} bytes is over the bound")
    return data


def _int(value: dict[bytes, BValue], key: bytes, low: int, high: int) -> int:
    found = value.get(key)
    if not isinstance(found, int) or not low <= found <= high:
        raise SearchProtocolError(f"field {key.decode()} is missing or out of range")
    return found


def _bytes(value: dict[bytes, BValue], key: bytes, limit: int) -> bytes:
    found = value.get(key)
    if not isinstance(found, bytes) or len(found) > limit:
        raise SearchProtocolError(f"field {key.decode()} is missing or too long")
    return found


def _list(value: dict[bytes, BValue], key: bytes, limit: int) -> list[BValue]:
    found = value.get(key)
    if not isinstance(found, list) or len(found) > limit:
        raise SearchProtocolError(f"field {key.decode()} is missing or too long")
    return found


def _query_id(value: dict[bytes, BValue]) -> bytes:
    ident = _bytes(value, b"id", QUERY_ID_SIZE)
    if len(ident) != QUERY_ID_SIZE:
        raise SearchProtocolError("a query id has 8 bytes")
    return ident


def _decode_query(value: dict[bytes, BValue]) -> Query:
    try:
        text = _bytes(value, b"q", MAX_QUERY).decode("utf-8")
    except UnicodeDecodeError:
        raise SearchProtocolError("query text is not UTF-8") from None
    kind = _bytes(value, b"k", 1)
    if kind not in (b"f", b"p"):
        raise SearchProtocolError("query kind must be f or p")
    return Query(
        _query_id(value), text, kind == b"p", _int(value, b"n", 1, MAX_LIMIT),
        _int(value, b"l", LOCAL, ROUTE),
    )  # fmt: skip


def _decode_supernodes(value: dict[bytes, BValue]) -> SupernodeList:
    found: list[tuple[bytes, bytes]] = []
    for item in _list(value, b"l", MAX_SUPERNODES):
        if not isinstance(item, dict):
            raise SearchProtocolError("a supernode must be a dictionary")
        key, address = _bytes(item, b"k", 32), _bytes(item, b"a", 18)
        if len(key) != 32 or len(address) not in (6, 18):
            raise SearchProtocolError("a supernode has a 32-byte key and a compact address")
        found.append((key, address))
    return SupernodeList(tuple(found))


def decode_message(data: bytes) -> SearchMessage:
    """One message from the wire; :class:`SearchProtocolError` for anything malformed."""
    try:
        value = decode(data, LIMITS)
    except BencodeError as exc:
        raise SearchProtocolError(f"search message does not decode: {exc}") from None
    if not isinstance(value, dict):
        raise SearchProtocolError("a search message must be a dictionary")
    kind = value.get(b"y")
    if kind == b"q":
        return _decode_query(value)
    if kind == b"r":
        entries = tuple(entry_from_value(e) for e in _list(value, b"r", MAX_BATCH))
        return ResultBatch(_query_id(value), entries, bool(_int(value, b"e", 0, 1)))
    if kind == b"s":
        entries = tuple(entry_from_value(e) for e in _list(value, b"e", MAX_STORE))
        return Store(entries, bool(_int(value, b"fw", 0, 1)))
    if kind == b"a":
        return StoreAnswer(_int(value, b"ok", 0, MAX_STORE), _int(value, b"no", 0, MAX_STORE))
    if kind == b"sn":
        return SupernodeAsk(bool(_int(value, b"me", 0, 1)), _int(value, b"p", 0, 65535))
    if kind == b"sl":
        return _decode_supernodes(value)
    raise SearchProtocolError("unknown search message type")
