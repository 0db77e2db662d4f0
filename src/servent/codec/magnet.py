"""Magnet links (BEP 9, v2 ``urn:btmh`` of BEP 52, ``so`` of BEP 53).

``parse_magnet`` accepts ``xt`` (``urn:btih:`` in hex or base32, and
``urn:btmh:1220`` + SHA-256 in hex), ``dn``, ``tr``, ``ws``, ``x.pe`` and
``so``; unknown parameters are ignored as the BEPs ask.  The link is hostile
input: its length, the number of parameters and the ``so`` ranges are
bounded, and every malformed part raises :class:`~servent.errors.MagnetError`
naming it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import quote, unquote_to_bytes

from servent.errors import MagnetError

MAX_URI_LENGTH = 64 * 1024
MAX_PARAMETERS = 1000
MAX_SELECTED_FILES = 100_000
_V2_PREFIX = "1220"  # multihash: sha2-256, 32 bytes


@dataclass(frozen=True, slots=True)
class Magnet:
    """What a magnet link says about a torrent (at least one info-hash)."""

    info_hash_v1: bytes | None = None
    info_hash_v2: bytes | None = None
    display_name: str | None = None
    trackers: tuple[str, ...] = ()
    peers: tuple[tuple[str, int], ...] = ()
    web_seeds: tuple[str, ...] = ()
    select_only: tuple[int, ...] = ()

    @property
    def wire_info_hash(self) -> bytes:
        """The 20 bytes used on the wire: v1 hash if present, else v2 truncated."""
        if self.info_hash_v1 is not None:
            return self.info_hash_v1
        assert self.info_hash_v2 is not None
        return self.info_hash_v2[:20]

    def to_uri(self) -> str:
        """Format as ``magnet:?xt=...`` (hex hashes, percent-encoded values)."""
        parts: list[str] = []
        if self.info_hash_v1 is not None:
            parts.append("xt=urn:btih:" + self.info_hash_v1.hex())
        if self.info_hash_v2 is not None:
            parts.append("xt=urn:btmh:" + _V2_PREFIX + self.info_hash_v2.hex())
        if not parts:
            raise MagnetError("a magnet link needs an info-hash")
        if self.display_name is not None:
            parts.append("dn=" + _quote(self.display_name))
        parts.extend("tr=" + _quote(url) for url in self.trackers)
        parts.extend("ws=" + _quote(url) for url in self.web_seeds)
        parts.extend("x.pe=" + _quote(_format_peer(host, port)) for host, port in self.peers)
        if self.select_only:
            parts.append("so=" + _format_ranges(self.select_only))
        return "magnet:?" + "&".join(parts)


def _quote(value: str) -> str:
    return quote(value, safe="/:@[]!$'()*,;")


def _format_peer(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _format_ranges(indices: tuple[int, ...]) -> str:
    ranges: list[str] = []
    ordered = sorted(set(indices))
    start = prev = ordered[0]
    for index in [*ordered[1:], -2]:
        if index == prev + 1:
            prev = index
            continue
        ranges.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = index
    return ",".join(ranges)


def parse_magnet(uri: str) -> Magnet:
    """Parse a magnet link; raise :class:`MagnetError` if it is malformed."""
    if not isinstance(uri, str):
        raise MagnetError("a magnet link must be text")
    if len(uri) > MAX_URI_LENGTH:
        raise MagnetError(f"magnet link longer than {MAX_URI_LENGTH} characters")
    if uri[:8].lower() != "magnet:?":
        raise MagnetError("not a magnet link (must start with 'magnet:?')")
    query = uri[8:].split("#", 1)[0]
    params = [p for p in query.split("&") if p]
    if len(params) > MAX_PARAMETERS:
        raise MagnetError(f"magnet link has more than {MAX_PARAMETERS} parameters")
    v1: bytes | None = None
    v2: bytes | None = None
    name: str | None = None
    trackers: list[str] = []
    peers: list[tuple[str, int]] = []
    web_seeds: list[str] = []
    select: tuple[int, ...] = ()
    for param in params:
        key, sep, raw_value = param.partition("=")
        if not sep:
            raise MagnetError(f"magnet parameter {key[:40]!r} has no value")
        base = key.lower().split(".", 1)[0] if key.lower().startswith(("xt.", "tr.")) else key
        base = base.lower()
        value = _unquote(raw_value, key)
        if base == "xt":
            kind, digest = _parse_exact_topic(value)
            if kind == 1:
                if v1 is not None and v1 != digest:
                    raise MagnetError("magnet link has two different v1 info-hashes")
                v1 = digest
            else:
                if v2 is not None and v2 != digest:
                    raise MagnetError("magnet link has two different v2 info-hashes")
                v2 = digest
        elif base == "dn":
            name = value
        elif base == "tr":
            trackers.append(value)
        elif base == "ws":
            web_seeds.append(value)
        elif base == "x.pe":
            peers.append(_parse_peer(value))
        elif base == "so":
            select = _parse_ranges(value)
    if v1 is None and v2 is None:
        raise MagnetError("magnet link has no 'xt=urn:btih:' or 'xt=urn:btmh:' info-hash")
    return Magnet(
        info_hash_v1=v1,
        info_hash_v2=v2,
        display_name=name,
        trackers=tuple(dict.fromkeys(trackers)),
        peers=tuple(dict.fromkeys(peers)),
        web_seeds=tuple(dict.fromkeys(web_seeds)),
        select_only=select,
    )


def _unquote(raw: str, key: str) -> str:
    try:
        return unquote_to_bytes(raw.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MagnetError(f"magnet parameter {key[:40]!r} is not valid UTF-8") from exc


def _parse_exact_topic(value: str) -> tuple[int, bytes]:
    lowered = value.lower()
    if lowered.startswith("urn:btih:"):
        text = value[9:]
        if len(text) == 40:
            return 1, _hex(text, "urn:btih")
        if len(text) == 32:
            try:
                return 1, base64.b32decode(text.upper())
            except (binascii.Error, ValueError) as exc:
                raise MagnetError(f"'urn:btih:' hash {text!r} is not valid base32") from exc
        raise MagnetError(f"'urn:btih:' hash has {len(text)} characters, expected 40 or 32")
    if lowered.startswith("urn:btmh:"):
        text = value[9:]
        if not text.startswith(_V2_PREFIX) or len(text) != 68:
            raise MagnetError(f"'urn:btmh:' must be '1220' and 64 hex digits, got {text[:80]!r}")
        return 2, _hex(text[4:], "urn:btmh")
    raise MagnetError(f"unsupported exact topic {value[:60]!r}")


def _hex(text: str, what: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError as exc:
        raise MagnetError(f"'{what}' hash {text[:80]!r} is not hexadecimal") from exc


def _parse_peer(value: str) -> tuple[str, int]:
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise MagnetError(f"peer {value[:80]!r} is not '[IPv6]:port'")
        port_text = rest[1:]
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or ":" in host:
            raise MagnetError(f"peer {value[:80]!r} is not 'host:port'")
    if not host or len(host) > 253:
        raise MagnetError(f"peer {value[:80]!r} has no valid host")
    if not _is_index(port_text) or not 0 < int(port_text) < 65536:
        raise MagnetError(f"peer {value[:80]!r} has an invalid port")
    return host, int(port_text)


def _parse_ranges(value: str) -> tuple[int, ...]:
    selected: set[int] = set()
    for part in value.split(","):
        first, dash, last = part.partition("-")
        if not _is_index(first) or (dash and not _is_index(last)):
            raise MagnetError(f"'so' range {part[:40]!r} is not 'N' or 'N-M'")
        low = int(first)
        high = int(last) if dash else low
        if high < low:
            raise MagnetError(f"'so' range {part[:40]!r} runs backwards")
        if high - low + 1 + len(selected) > MAX_SELECTED_FILES:
            raise MagnetError(f"'so' selects more than {MAX_SELECTED_FILES} files")
        selected.update(range(low, high + 1))
    return tuple(sorted(selected))


def _is_index(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 9
