"""Peer exchange (BEP 11, ``ut_pex``): codec and per-connection state.

One :class:`PexState` per connection that negotiated ``ut_pex``.  Outgoing:
the caller reports who we are connected to; at most once a minute the state
produces a message with what changed since the last one (at most 50 added and
50 dropped).  Incoming: a message is decoded with bounds; a peer that sends
messages much faster than once a minute is flooding and is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from servent.codec import bencode
from servent.codec.compact import Address, decode_peers, encode_peer, is_ipv6
from servent.errors import CompactEncodingError, PexError

PEX_INTERVAL = 60.0
MAX_ADDED = 50
MAX_DROPPED = 50
MIN_RECEIVE_GAP = 20.0
"""Messages closer together than this count as a flood (BEP 11 asks for 1/min)."""
_LIMITS = bencode.Limits(max_length=16 * 1024, max_depth=2, max_values=64)

FLAG_ENCRYPTION = 0x01
FLAG_SEED = 0x02
FLAG_UTP = 0x04
FLAG_HOLEPUNCH = 0x08
FLAG_REACHABLE = 0x10


@dataclass(frozen=True, slots=True)
class PexMessage:
    added: tuple[tuple[Address, int], ...] = ()
    dropped: tuple[Address, ...] = ()


def encode_pex(message: PexMessage) -> bytes:
    out: dict[bytes | str, bencode.Encodable] = {}
    for v6, suffix in ((False, b""), (True, b"6")):
        added = [(a, f) for a, f in message.added if is_ipv6(a[0]) == v6]
        dropped = [a for a in message.dropped if is_ipv6(a[0]) == v6]
        out[b"added" + suffix] = b"".join(encode_peer(a) for a, _ in added)
        out[b"added" + suffix + b".f"] = bytes(f & 0xFF for _, f in added)
        out[b"dropped" + suffix] = b"".join(encode_peer(a) for a in dropped)
    return bencode.encode(out)


def _field(d: dict[bytes, bencode.BValue], key: bytes) -> bytes:
    value = d.get(key, b"")
    if not isinstance(value, bytes):
        raise PexError(f"ut_pex field {key.decode()} is not a string")
    return value


def decode_pex(payload: bytes, *, max_added: int = MAX_ADDED) -> PexMessage:
    """Decode a ``ut_pex`` payload; extra peers beyond the bounds are ignored."""
    d = bencode.decode_dict(payload, _LIMITS, PexError, "ut_pex payload")
    added: list[tuple[Address, int]] = []
    dropped: list[Address] = []
    try:
        for v6, suffix, step in ((False, b"", 6), (True, b"6", 18)):
            raw = _field(d, b"added" + suffix)
            flags = _field(d, b"added" + suffix + b".f")
            if len(raw) % step or len(_field(d, b"dropped" + suffix)) % step:
                raise PexError("ut_pex peer list has a partial entry")
            peers = decode_peers(raw[: step * max_added], ipv6=v6)
            for i, addr in enumerate(peers):
                if addr[1] != 0 and len(added) < max_added:
                    added.append((addr, flags[i] if i < len(flags) else 0))
            drop = _field(d, b"dropped" + suffix)
            dropped.extend(decode_peers(drop[: step * MAX_DROPPED], ipv6=v6))
    except CompactEncodingError as exc:
        raise PexError(f"bad ut_pex peers: {exc}") from exc
    return PexMessage(tuple(added), tuple(dropped[:MAX_DROPPED]))


class PexState:
    """What we told one peer, and how often it talks to us."""

    def __init__(self, now: float) -> None:
        self._advertised: dict[Address, int] = {}
        self._current: dict[Address, int] = {}
        self._next_send = now  # the first message may go at once
        self._last_receive: float | None = None

    # outgoing -----------------------------------------------------------
    def set_connected(self, peers: Iterable[tuple[Address, int]]) -> None:
        """Replace the set of peers we are connected to (with their flags)."""
        self._current = dict(peers)

    def next_timer(self) -> float:
        return self._next_send

    def build_message(self, now: float) -> bytes | None:
        """The next message if one is due and something changed, else None."""
        if now < self._next_send:
            return None
        added = [(a, f) for a, f in self._current.items() if a not in self._advertised]
        dropped = [a for a in self._advertised if a not in self._current]
        added, dropped = added[:MAX_ADDED], dropped[:MAX_DROPPED]
        if not added and not dropped:
            return None
        for addr, flags in added:
            self._advertised[addr] = flags
        for addr in dropped:
            del self._advertised[addr]
        self._next_send = now + PEX_INTERVAL
        return encode_pex(PexMessage(tuple(added), tuple(dropped)))

    # incoming -----------------------------------------------------------
    def receive(self, payload: bytes, now: float) -> PexMessage:
        """Decode a received message; raises PexError on garbage or a flood."""
        last = self._last_receive
        if last is not None and now - last < MIN_RECEIVE_GAP:
            raise PexError(f"ut_pex messages {now - last:.1f}s apart (flood)")
        self._last_receive = now
        return decode_pex(payload)
