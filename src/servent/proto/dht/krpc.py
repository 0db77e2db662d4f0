"""KRPC (BEP 5): the bencoded query / response / error envelope of the DHT.

:func:`parse_message` checks only the envelope (types and sizes of ``t``,
``y``, ``q``, ``a``/``r``/``e``, the sender ``id``); each query's own
arguments are checked where the query is served. Everything hostile raises
:class:`~servent.errors.KrpcDecodeError`, carrying the transaction ID when it
was readable so a query can still be answered with error 203.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from servent.codec.bencode import BValue, Encodable, encode
from servent.codec.compact import Address, decode_peer
from servent.errors import CompactEncodingError, KrpcDecodeError
from servent.proto.dht.fastbencode import decode_datagram

GENERIC_ERROR = 201
SERVER_ERROR = 202
PROTOCOL_ERROR = 203
METHOD_UNKNOWN = 204
# BEP 44
VALUE_TOO_BIG = 205
INVALID_SIGNATURE = 206
SALT_TOO_BIG = 207
CAS_MISMATCH = 301
SEQ_TOO_LOW = 302

MAX_TID_LENGTH = 16
MAX_METHOD_LENGTH = 32
MAX_ERROR_TEXT = 256

QUERY = b"q"
RESPONSE = b"r"
ERROR = b"e"


class Message:
    """One decoded KRPC datagram; ``args`` is ``a`` of a query or ``r`` of a response."""

    __slots__ = (
        "args",
        "error_code",
        "error_text",
        "kind",
        "method",
        "read_only",
        "reflected_ip",
        "sender_id",
        "tid",
        "version",
    )

    def __init__(self, kind: bytes, tid: bytes) -> None:
        self.kind = kind
        self.tid = tid
        self.method = b""
        self.args: dict[bytes, BValue] = {}
        self.sender_id = b""
        self.read_only = False
        self.reflected_ip: Address | None = None
        self.error_code = 0
        self.error_text = b""
        self.version: bytes | None = None


def encode_value(value: BValue) -> bytes:
    """Bencode a decoded value quickly (the hot path of every reply).

    Handles exactly the shapes KRPC uses (bytes, int, list, dict with bytes
    keys) with ``type()`` dispatch; anything else goes to the general encoder.
    """
    out: list[bytes] = []
    _encode_fast(value, out, 0)
    return b"".join(out)


def _encode_fast(value: BValue, out: list[bytes], depth: int) -> None:
    if type(value) is bytes:
        out.append(b"%d:%s" % (len(value), value))
    elif type(value) is int:
        out.append(b"i%de" % value)
    elif type(value) is dict and depth < 32 and all(type(key) is bytes for key in value):
        out.append(b"d")
        for key in sorted(value):
            out.append(b"%d:%s" % (len(key), key))
            _encode_fast(value[key], out, depth + 1)
        out.append(b"e")
    elif type(value) is list and depth < 32:
        if all(type(item) is bytes for item in value):
            out.append(b"l%se" % b"".join([b"%d:%s" % (len(item), item) for item in value]))  # type: ignore[arg-type]
            return
        out.append(b"l")
        for item in value:
            _encode_fast(item, out, depth + 1)
        out.append(b"e")
    else:
        out.append(encode(cast(Encodable, value)))


def parse_message(data: bytes) -> Message:
    """Decode and validate the envelope of one datagram."""
    top = decode_datagram(data)
    if type(top) is not dict:
        raise KrpcDecodeError("a KRPC message is a dictionary")
    tid = top.get(b"t")
    if type(tid) is not bytes or not 0 < len(tid) <= MAX_TID_LENGTH:
        raise KrpcDecodeError("missing or bad transaction ID")
    kind = top.get(b"y")
    version = top.get(b"v")
    if kind == QUERY:
        msg = Message(QUERY, tid)
        method = top.get(b"q")
        if type(method) is not bytes or not 0 < len(method) <= MAX_METHOD_LENGTH:
            raise KrpcDecodeError("missing or bad query method", tid=tid)
        msg.method = method
        args = top.get(b"a")
        if type(args) is not dict:
            raise KrpcDecodeError("query arguments are not a dictionary", tid=tid)
        msg.args = args
        sender = args.get(b"id")
        if type(sender) is not bytes or len(sender) != 20:
            raise KrpcDecodeError("query without a 20-byte node ID", tid=tid)
        msg.sender_id = sender
        if top.get(b"ro") == 1:
            msg.read_only = True
    elif kind == RESPONSE:
        msg = Message(RESPONSE, tid)
        args = top.get(b"r")
        if type(args) is not dict:
            raise KrpcDecodeError("response values are not a dictionary")
        msg.args = args
        sender = args.get(b"id")
        if type(sender) is not bytes or len(sender) != 20:
            raise KrpcDecodeError("response without a 20-byte node ID")
        msg.sender_id = sender
        ip = top.get(b"ip")
        if type(ip) is bytes:
            try:
                msg.reflected_ip = decode_peer(ip)
            except CompactEncodingError:
                msg.reflected_ip = None
    elif kind == ERROR:
        msg = Message(ERROR, tid)
        err = top.get(b"e")
        if type(err) is not list or not err or type(err[0]) is not int:
            raise KrpcDecodeError("error without a [code, message] list")
        msg.error_code = err[0]
        text = err[1] if len(err) > 1 else b""
        msg.error_text = text[:MAX_ERROR_TEXT] if type(text) is bytes else b""
    else:
        raise KrpcDecodeError("unknown message type")
    if type(version) is bytes and len(version) <= 8:
        msg.version = version
    return msg


def _append_items(append: Callable[[bytes], None], items: dict[bytes, BValue]) -> None:
    """The bencoded keys and values of ``items`` in sorted key order (the body of a dict),
    with the common byte-string and integer values encoded inline."""
    for key in sorted(items):
        value = items[key]
        append(b"%d:%s" % (len(key), key))
        if type(value) is bytes:
            append(b"%d:%s" % (len(value), value))
        elif type(value) is int:
            append(b"i%de" % value)
        else:
            append(encode_value(value))


def encode_query(
    tid: bytes,
    method: bytes,
    args: dict[bytes, BValue],
    *,
    read_only: bool = False,
    version: bytes | None = None,
) -> bytes:
    """A query datagram; ``args`` must already contain our ``id``.

    Written out by hand (keys in sorted order: a, q, ro, t, v, y): every
    lookup step passes through here.
    """
    parts = [b"d1:ad"]
    append = parts.append
    _append_items(append, args)
    append(b"e1:q%d:%s" % (len(method), method))
    if read_only:
        append(b"2:roi1e")
    append(b"1:t%d:%s" % (len(tid), tid))
    if version:
        append(b"1:v%d:%s" % (len(version), version))
    append(b"1:y1:qe")
    return b"".join(parts)


def encode_response(
    tid: bytes,
    values: dict[bytes, BValue],
    *,
    reflected_ip: bytes | None = None,
    version: bytes | None = None,
) -> bytes:
    """A response datagram; ``reflected_ip`` is the requester's compact address (BEP 42).

    Written out by hand (keys in sorted order: ip, r, t, v, y) because every
    answered query passes through here.
    """
    parts = [b"d"]
    if reflected_ip is not None:
        parts.append(b"2:ip%d:%s" % (len(reflected_ip), reflected_ip))
    parts.append(b"1:rd")
    append = parts.append
    _append_items(append, values)
    append(b"e1:t%d:%s" % (len(tid), tid))
    if version:
        append(b"1:v%d:%s" % (len(version), version))
    append(b"1:y1:re")
    return b"".join(parts)


def encode_error(tid: bytes, code: int, text: str, *, version: bytes | None = None) -> bytes:
    """An error datagram answering transaction ``tid``."""
    top: dict[bytes, BValue] = {b"t": tid, b"y": ERROR, b"e": [code, text.encode()]}
    if version:
        top[b"v"] = version
    return encode_value(top)
