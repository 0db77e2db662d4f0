"""Tracker messages (BEP 3, 7, 15, 23, 48): pure encoders and strict decoders.

Both sides live here, so the client and the built-in tracker speak exactly
the same dialect and the tests can round-trip every message.  Every decoder
treats its input as hostile: sizes and peer counts are bounded and any
malformation raises :class:`~servent.errors.TrackerError`.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping, Sequence

from servent.codec import bencode
from servent.codec.compact import Address, decode_peers, encode_peer, is_ipv6
from servent.codec.tracker_messages import (
    ACTION_ANNOUNCE,
    ACTION_CONNECT,
    ACTION_ERROR,
    ACTION_SCRAPE,
    EVENTS,
    MAX_HTTP_RESPONSE,
    MAX_PEERS,
    MAX_SCRAPE_HASHES,
    UDP_PROTOCOL_ID,
    AnnounceRequest,
    AnnounceResponse,
    ScrapeEntry,
    ScrapeResponse,
    check_request,
)
from servent.codec.tracker_udp import (
    UdpAnnounceRequest,
    UdpAnnounceResponse,
    UdpConnectRequest,
    UdpConnectResponse,
    UdpErrorResponse,
    UdpRequest,
    UdpResponse,
    UdpScrapeRequest,
    UdpScrapeResponse,
    decode_udp_request,
    decode_udp_response,
    encode_udp_request,
    encode_udp_response,
)
from servent.errors import CompactEncodingError, DecodeError, TrackerError, TrackerFailureError

__all__ = [
    "ACTION_ANNOUNCE",
    "ACTION_CONNECT",
    "ACTION_ERROR",
    "ACTION_SCRAPE",
    "EVENTS",
    "MAX_HTTP_RESPONSE",
    "MAX_PEERS",
    "MAX_SCRAPE_HASHES",
    "UDP_PROTOCOL_ID",
    "AnnounceRequest",
    "AnnounceResponse",
    "ScrapeEntry",
    "ScrapeResponse",
    "UdpAnnounceRequest",
    "UdpAnnounceResponse",
    "UdpConnectRequest",
    "UdpConnectResponse",
    "UdpErrorResponse",
    "UdpRequest",
    "UdpResponse",
    "UdpScrapeRequest",
    "UdpScrapeResponse",
    "announce_url",
    "check_request",
    "decode_udp_request",
    "decode_udp_response",
    "encode_announce_response",
    "encode_failure",
    "encode_scrape_response",
    "encode_udp_request",
    "encode_udp_response",
    "parse_announce_query",
    "parse_announce_response",
    "parse_scrape_query",
    "parse_scrape_response",
    "peers_from",
    "scrape_query",
    "scrape_url",
]

_TRACKER_LIMITS = bencode.Limits(max_length=MAX_HTTP_RESPONSE, max_depth=8, max_values=50_000)

# --------------------------------------------------------------------- HTTP


def announce_url(base: str, req: AnnounceRequest) -> str:
    """The GET URL of an HTTP announce (binary fields percent-encoded)."""
    check_request(req)
    q = urllib.parse.quote_from_bytes
    parts = [
        f"info_hash={q(req.info_hash, safe='')}",
        f"peer_id={q(req.peer_id, safe='')}",
        f"port={req.port}",
        f"uploaded={req.uploaded}",
        f"downloaded={req.downloaded}",
        f"left={req.left}",
        f"numwant={req.numwant}",
        f"key={req.key:08x}",
        f"compact={1 if req.compact else 0}",
    ]
    if req.event:
        parts.append(f"event={req.event}")
    return base + ("&" if "?" in base else "?") + "&".join(parts)


def scrape_url(announce: str) -> str | None:
    """The scrape URL of an HTTP announce URL, or None if it has none (BEP 48)."""
    split = urllib.parse.urlsplit(announce)
    head, _, last = split.path.rpartition("/")
    if not last.startswith("announce"):
        return None
    path = f"{head}/scrape{last[len('announce') :]}"
    return urllib.parse.urlunsplit(split._replace(path=path))


def scrape_query(base: str, info_hashes: Sequence[bytes]) -> str:
    q = urllib.parse.quote_from_bytes
    if not info_hashes or len(info_hashes) > MAX_SCRAPE_HASHES:
        raise TrackerError(f"scrape needs 1..{MAX_SCRAPE_HASHES} info-hashes")
    query = "&".join(f"info_hash={q(h, safe='')}" for h in info_hashes)
    return base + ("&" if "?" in base else "?") + query


def _query_params(query: str) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    try:
        pairs = urllib.parse.parse_qsl(
            query, keep_blank_values=True, encoding="latin-1", max_num_fields=200
        )
    except ValueError as exc:
        raise TrackerError(f"bad query string: {exc}") from exc
    try:
        for key, value in pairs:
            out.setdefault(key, []).append(value.encode("latin-1"))
    except UnicodeEncodeError as exc:
        raise TrackerError("query string has characters that are not percent-encoded") from exc
    return out


def _int_param(params: Mapping[str, list[bytes]], name: str, default: int | None = None) -> int:
    values = params.get(name)
    if not values:
        if default is None:
            raise TrackerError(f"missing parameter {name}")
        return default
    raw = values[0]
    if not raw.isdigit() or len(raw) > 20:
        raise TrackerError(f"parameter {name} is not a non-negative integer")
    return int(raw)


def parse_announce_query(query: str) -> AnnounceRequest:
    """Decode the query string of an HTTP announce (the tracker side)."""
    params = _query_params(query)
    info_hash = (params.get("info_hash") or [b""])[0]
    peer_id = (params.get("peer_id") or [b""])[0]
    event = (params.get("event") or [b""])[0].decode("latin-1")
    key_raw = (params.get("key") or [b"0"])[0]
    try:
        key = int(key_raw, 16) & 0xFFFFFFFF if key_raw else 0
    except ValueError:
        key = 0
    ip_raw = params.get("ip")
    req = AnnounceRequest(
        info_hash=info_hash,
        peer_id=peer_id,
        port=_int_param(params, "port"),
        uploaded=_int_param(params, "uploaded", 0),
        downloaded=_int_param(params, "downloaded", 0),
        left=_int_param(params, "left", 0),
        event=event if event != "empty" else "",
        numwant=_int_param(params, "numwant", 50),
        compact=(params.get("compact") or [b"1"])[0] != b"0",
        key=key,
        ip=ip_raw[0].decode("latin-1") if ip_raw else None,
    )
    check_request(req)
    return req


def parse_scrape_query(query: str) -> list[bytes]:
    hashes = _query_params(query).get("info_hash", [])
    if len(hashes) > MAX_SCRAPE_HASHES or any(len(h) != 20 for h in hashes):
        raise TrackerError("scrape needs 20-byte info-hashes, at most 74")
    return hashes


def _decode_body(body: bytes) -> dict[bytes, bencode.BValue]:
    if len(body) > MAX_HTTP_RESPONSE:
        raise TrackerError(f"tracker response of {len(body)} bytes is too large")
    try:
        value = bencode.decode(body, _TRACKER_LIMITS)
    except DecodeError as exc:
        raise TrackerError(f"tracker response is not bencoded: {exc}") from exc
    if not isinstance(value, dict):
        raise TrackerError("tracker response is not a dictionary")
    failure = value.get(b"failure reason")
    if failure is not None:
        text = failure.decode("utf-8", "replace")[:300] if isinstance(failure, bytes) else "?"
        raise TrackerFailureError(f"tracker failure: {text}")
    return value


def _opt_int(d: Mapping[bytes, bencode.BValue], key: bytes) -> int | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or value < 0:
        raise TrackerError(f"{key.decode()} is not a non-negative integer")
    return value


def _peer_list(value: bencode.BValue, max_peers: int) -> list[Address]:
    """Peers as a list of dictionaries (non-compact, BEP 3)."""
    if not isinstance(value, list):
        raise TrackerError("peers is neither a string nor a list")
    out: list[Address] = []
    for item in value[:max_peers]:
        if not isinstance(item, dict):
            raise TrackerError("a peer entry is not a dictionary")
        ip, port = item.get(b"ip"), item.get(b"port")
        if not isinstance(ip, bytes) or not isinstance(port, int) or not 0 < port <= 0xFFFF:
            raise TrackerError("a peer entry lacks a valid ip or port")
        try:
            text = ip.decode("ascii")
            encode_peer((text, port))  # validates the address
        except (UnicodeDecodeError, CompactEncodingError):
            continue  # host names are not dialled: skip, do not fail the answer
        out.append((text, port))
    return out


def parse_announce_response(body: bytes, *, max_peers: int = MAX_PEERS) -> AnnounceResponse:
    """Decode an HTTP announce answer; bounded to ``max_peers`` peers."""
    d = _decode_body(body)
    interval = _opt_int(d, b"interval")
    if interval is None:
        raise TrackerError("tracker response lacks an interval")
    peers: list[Address] = []
    try:
        raw = d.get(b"peers", b"")
        if isinstance(raw, bytes):
            if len(raw) % 6:
                raise TrackerError(f"compact peers length {len(raw)} is not a multiple of 6")
            peers.extend(decode_peers(raw[: 6 * max_peers]))
        else:
            peers.extend(_peer_list(raw, max_peers))
        raw6 = d.get(b"peers6", b"")
        if not isinstance(raw6, bytes):
            raise TrackerError("peers6 is not a string")
        if len(raw6) % 18:
            raise TrackerError(f"peers6 length {len(raw6)} is not a multiple of 18")
        peers.extend(decode_peers(raw6[: 18 * max_peers], ipv6=True))
    except CompactEncodingError as exc:
        raise TrackerError(f"bad compact peers: {exc}") from exc
    tracker_id = d.get(b"tracker id")
    warning = d.get(b"warning message")
    return AnnounceResponse(
        interval=interval,
        peers=tuple(p for p in peers if p[1] != 0)[:max_peers],
        min_interval=_opt_int(d, b"min interval"),
        complete=_opt_int(d, b"complete"),
        incomplete=_opt_int(d, b"incomplete"),
        tracker_id=tracker_id if isinstance(tracker_id, bytes) else None,
        warning=warning.decode("utf-8", "replace")[:300] if isinstance(warning, bytes) else None,
    )


def encode_announce_response(resp: AnnounceResponse, *, compact: bool = True) -> bytes:
    """The tracker side of :func:`parse_announce_response`."""
    out: dict[bytes | str, bencode.Encodable] = {b"interval": resp.interval}
    if resp.min_interval is not None:
        out[b"min interval"] = resp.min_interval
    if resp.complete is not None:
        out[b"complete"] = resp.complete
    if resp.incomplete is not None:
        out[b"incomplete"] = resp.incomplete
    v4 = [p for p in resp.peers if not is_ipv6(p[0])]
    v6 = [p for p in resp.peers if is_ipv6(p[0])]
    if compact:
        out[b"peers"] = b"".join(encode_peer(p) for p in v4)
        if v6:
            out[b"peers6"] = b"".join(encode_peer(p) for p in v6)
    else:
        out[b"peers"] = [{b"ip": ip.encode(), b"port": port} for ip, port in resp.peers]
    return bencode.encode(out)


def encode_failure(reason: str) -> bytes:
    return bencode.encode({b"failure reason": reason})


def parse_scrape_response(body: bytes) -> ScrapeResponse:
    d = _decode_body(body)
    files = d.get(b"files")
    if not isinstance(files, dict):
        raise TrackerError("scrape response lacks a files dictionary")
    out: dict[bytes, ScrapeEntry] = {}
    for info_hash, stats in list(files.items())[:MAX_SCRAPE_HASHES]:
        if len(info_hash) != 20 or not isinstance(stats, dict):
            raise TrackerError("malformed scrape entry")
        out[info_hash] = ScrapeEntry(
            complete=_opt_int(stats, b"complete") or 0,
            downloaded=_opt_int(stats, b"downloaded") or 0,
            incomplete=_opt_int(stats, b"incomplete") or 0,
        )
    return ScrapeResponse(out)


def encode_scrape_response(files: Mapping[bytes, ScrapeEntry]) -> bytes:
    body: dict[bytes | str, bencode.Encodable] = {
        h: {b"complete": e.complete, b"downloaded": e.downloaded, b"incomplete": e.incomplete}
        for h, e in files.items()
    }
    return bencode.encode({b"files": body})


def peers_from(addrs: Iterable[Address], limit: int) -> tuple[Address, ...]:
    """At most ``limit`` peers, as a tuple (helper for callers building answers)."""
    out: list[Address] = []
    for addr in addrs:
        if len(out) >= limit:
            break
        out.append(addr)
    return tuple(out)
