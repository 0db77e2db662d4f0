"""Messages of ``servent/reach/1``, the connect-back check (``docs/reachability.md``).

A node asks another to dial its port; the answer says whether the TCP
connection was accepted and from which address the asker was seen.  Both
messages are small bencoded dictionaries, bounded before they are decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

from servent.codec import bencode
from servent.codec.compact import Address, decode_peer, encode_peer
from servent.errors import DecodeError, ProtocolError

PROTOCOL = "servent/reach/1"
MAX_REQUEST = 64
MAX_ANSWER = 128


class ReachMessageError(ProtocolError):
    """A malformed ``servent/reach/1`` message."""


@dataclass(frozen=True, slots=True)
class ReachAnswer:
    ok: bool
    """The dial-back connection was accepted."""
    seen: Address
    """The address the asker's channel comes from."""


def encode_request(port: int) -> bytes:
    if not 1 <= port <= 0xFFFF:
        raise ValueError(f"port {port} is outside 1..65535")
    return bencode.encode({b"port": port})


def _dictionary(data: bytes, limit: int) -> dict[bytes, object]:
    return dict(bencode.decode_dict(data, bencode.Limits(max_length=limit), ReachMessageError))


def decode_request(data: bytes) -> int:
    """The port the asker wants dialled."""
    port = _dictionary(data, MAX_REQUEST).get(b"port")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 0xFFFF:
        raise ReachMessageError(f"bad port {port!r}")
    return port


def encode_answer(answer: ReachAnswer) -> bytes:
    return bencode.encode({b"ok": int(answer.ok), b"seen": encode_peer(answer.seen)})


def decode_answer(data: bytes) -> ReachAnswer:
    message = _dictionary(data, MAX_ANSWER)
    ok, seen = message.get(b"ok"), message.get(b"seen")
    if ok not in (0, 1) or isinstance(ok, bool) or not isinstance(seen, bytes):
        raise ReachMessageError("answer needs ok (0/1) and seen")
    try:
        return ReachAnswer(ok == 1, decode_peer(seen))
    except DecodeError as exc:
        raise ReachMessageError(f"bad seen address: {exc}") from exc
