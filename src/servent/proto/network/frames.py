"""The frames of ``servent/network/1`` (``docs/networks.md`` section 6).

One bencoded dictionary per frame, at most 60,000 bytes; ``y`` names the type.
:func:`decode_frame` checks every bound and raises :class:`NetworkError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from servent.codec.bencode import BValue, encode
from servent.codec.compact import decode_peer, encode_peer
from servent.errors import CompactEncodingError, NetworkError
from servent.proto.network.fields import as_dict, get_bytes, get_int, get_list, get_text
from servent.proto.network.keys import KEY_LENGTH, NETWORK_ID_LENGTH

__all__ = [
    "MAX_QUERY",
    "MAX_RESULTS",
    "MAX_TEXT",
    "BroadcastFrame",
    "Frame",
    "Hello",
    "Join",
    "KeyAsk",
    "KeyGiven",
    "Ok",
    "Query",
    "Refusal",
    "Result",
    "Results",
    "Welcome",
    "decode_frame",
    "encode_frame",
]

PROTOCOL = "servent/network/1"
MAX_QUERY = 200
MAX_RESULTS = 200
MAX_TEXT = 65_536
MAX_ADDRESSES = 8
MAX_KNOWN = 200
Address = tuple[str, int]


@dataclass(frozen=True, slots=True)
class Join:
    network: bytes
    invite_id: bytes
    secret: bytes
    addresses: tuple[Address, ...] = ()
    #: The joiner's display name, for the roster ("" when it has none).
    name: str = ""


@dataclass(frozen=True, slots=True)
class Welcome:
    roster: bytes
    epoch: int
    key: bytes


@dataclass(frozen=True, slots=True)
class Hello:
    network: bytes
    roster: bytes
    epoch: int
    proof: bytes
    addresses: tuple[Address, ...] = ()
    #: Where the sender knows other members to be (peer exchange among members).
    known: tuple[tuple[bytes, tuple[Address, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class KeyAsk:
    network: bytes
    epoch: int


@dataclass(frozen=True, slots=True)
class KeyGiven:
    epoch: int
    key: bytes


@dataclass(frozen=True, slots=True)
class Query:
    network: bytes
    text: str
    limit: int


@dataclass(frozen=True, slots=True)
class Result:
    info_hash: bytes
    name: str
    size: int
    address: Address
    publisher: bytes


@dataclass(frozen=True, slots=True)
class Results:
    results: tuple[Result, ...]


@dataclass(frozen=True, slots=True)
class BroadcastFrame:
    network: bytes
    message_id: bytes
    time: int
    text: str


@dataclass(frozen=True, slots=True)
class Ok:
    pass


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str


Frame = Join | Welcome | Hello | KeyAsk | KeyGiven | Query | Results | BroadcastFrame | Ok | Refusal


def _addresses(values: list[BValue]) -> tuple[Address, ...]:
    try:
        return tuple(decode_peer(v) for v in values if isinstance(v, bytes))
    except CompactEncodingError as exc:
        raise NetworkError(f"a bad address: {exc}") from None


def _peers(addresses: tuple[Address, ...]) -> list[BValue]:
    return [encode_peer(a) for a in addresses[:MAX_ADDRESSES]]


def encode_frame(frame: Frame) -> bytes:
    """The bytes of one frame."""
    return encode(_body(frame))


def _body(frame: Frame) -> dict[bytes | str, Any]:
    match frame:
        case Join():
            return {b"y": b"join", b"i": frame.network, b"t": frame.invite_id,
                    b"s": frame.secret, b"p": _peers(frame.addresses),
                    b"n": frame.name.encode()[:64].decode(errors="ignore").encode()}  # fmt: skip
        case Welcome():
            return {b"y": b"welcome", b"r": frame.roster, b"e": frame.epoch, b"k": frame.key}
        case Hello():
            known = [{b"k": k, b"p": _peers(a)} for k, a in frame.known[:MAX_KNOWN]]
            return {b"y": b"hello", b"i": frame.network, b"r": frame.roster, b"e": frame.epoch,
                    b"mac": frame.proof, b"p": _peers(frame.addresses), b"x": known}  # fmt: skip
        case KeyAsk():
            return {b"y": b"key", b"i": frame.network, b"e": frame.epoch}
        case KeyGiven():
            return {b"y": b"k", b"e": frame.epoch, b"k": frame.key}
        case Query():
            return {b"y": b"q", b"i": frame.network, b"q": frame.text.encode(), b"l": frame.limit}
        case Results():
            return {b"y": b"r", b"r": [_result_body(r) for r in frame.results[:MAX_RESULTS]]}
        case BroadcastFrame():
            return {b"y": b"b", b"i": frame.network, b"id": frame.message_id,
                    b"t": frame.time, b"p": frame.text.encode()}  # fmt: skip
        case Ok():
            return {b"y": b"ok"}
        case Refusal():
            return {b"y": b"no", b"why": frame.reason.encode()[:200]}


def _result_body(result: Result) -> dict[bytes | str, Any]:
    return {b"h": result.info_hash, b"n": result.name.encode()[:255], b"s": result.size,
            b"a": encode_peer(result.address), b"k": result.publisher}  # fmt: skip


def _known(values: list[BValue]) -> tuple[tuple[bytes, tuple[Address, ...]], ...]:
    found: list[tuple[bytes, tuple[Address, ...]]] = []
    for value in values:
        if not isinstance(value, dict):
            raise NetworkError("a known member is not a dictionary")
        key = get_bytes(value, b"k", length=32)
        found.append((key, _addresses(get_list(value, b"p", max_items=MAX_ADDRESSES))))
    return tuple(found)


def _network(v: dict[bytes, BValue]) -> bytes:
    return get_bytes(v, b"i", length=NETWORK_ID_LENGTH)


def _result(value: BValue) -> Result:
    if not isinstance(value, dict):
        raise NetworkError("a result is not a dictionary")
    try:
        address = decode_peer(get_bytes(value, b"a", max_length=18))
    except CompactEncodingError as exc:
        raise NetworkError(f"a result has a bad address: {exc}") from None
    return Result(
        info_hash=get_bytes(value, b"h", length=20),
        name=get_text(value, b"n", max_length=255),
        size=get_int(value, b"s"),
        address=address,
        publisher=get_bytes(value, b"k", length=32),
    )


_PARSERS: dict[bytes, Callable[[dict[bytes, BValue]], Frame]] = {
    b"join": lambda v: Join(
        _network(v),
        get_bytes(v, b"t", length=16),
        get_bytes(v, b"s", length=16),
        _addresses(get_list(v, b"p", max_items=MAX_ADDRESSES)),
        get_text(v, b"n", max_length=64) if b"n" in v else "",
    ),
    b"welcome": lambda v: Welcome(
        get_bytes(v, b"r"),
        get_int(v, b"e", low=1, high=2**32),
        get_bytes(v, b"k", length=KEY_LENGTH),
    ),
    b"hello": lambda v: Hello(
        _network(v),
        get_bytes(v, b"r"),
        get_int(v, b"e", low=1, high=2**32),
        get_bytes(v, b"mac", length=32),
        _addresses(get_list(v, b"p", max_items=MAX_ADDRESSES)),
        _known(get_list(v, b"x", max_items=MAX_KNOWN)),
    ),
    b"key": lambda v: KeyAsk(_network(v), get_int(v, b"e", low=1, high=2**32)),
    b"k": lambda v: KeyGiven(
        get_int(v, b"e", low=1, high=2**32), get_bytes(v, b"k", length=KEY_LENGTH)
    ),
    b"q": lambda v: Query(
        _network(v),
        get_text(v, b"q", max_length=MAX_QUERY),
        get_int(v, b"l", low=1, high=MAX_RESULTS + 1),
    ),
    b"r": lambda v: Results(tuple(_result(r) for r in get_list(v, b"r", max_items=MAX_RESULTS))),
    b"b": lambda v: BroadcastFrame(
        _network(v),
        get_bytes(v, b"id", length=16),
        get_int(v, b"t", high=2**40),
        get_text(v, b"p", max_length=MAX_TEXT),
    ),
    b"ok": lambda v: Ok(),
    b"no": lambda v: Refusal(get_text(v, b"why", max_length=200)),
}


def decode_frame(data: bytes) -> Frame:
    """One frame from a peer; :class:`NetworkError` for anything malformed."""
    values = as_dict(data)
    kind = values.get(b"y")
    parser = _PARSERS.get(kind) if isinstance(kind, bytes) else None
    if parser is None:
        raise NetworkError("unknown frame type")
    return parser(values)
