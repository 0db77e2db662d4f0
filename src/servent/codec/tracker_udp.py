"""UDP tracker protocol (BEP 15) datagrams: pure encoders and strict decoders."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from servent.codec.compact import decode_peers, encode_peer, is_ipv6
from servent.codec.tracker_messages import (
    ACTION_ANNOUNCE,
    ACTION_CONNECT,
    ACTION_ERROR,
    ACTION_SCRAPE,
    EVENTS,
    MAX_PEERS,
    MAX_SCRAPE_HASHES,
    UDP_PROTOCOL_ID,
    AnnounceRequest,
    AnnounceResponse,
    ScrapeEntry,
    check_request,
)
from servent.errors import CompactEncodingError, TrackerError


@dataclass(frozen=True, slots=True)
class UdpConnectRequest:
    transaction_id: int


@dataclass(frozen=True, slots=True)
class UdpAnnounceRequest:
    connection_id: int
    transaction_id: int
    request: AnnounceRequest


@dataclass(frozen=True, slots=True)
class UdpScrapeRequest:
    connection_id: int
    transaction_id: int
    info_hashes: tuple[bytes, ...]


UdpRequest = UdpConnectRequest | UdpAnnounceRequest | UdpScrapeRequest


@dataclass(frozen=True, slots=True)
class UdpConnectResponse:
    transaction_id: int
    connection_id: int


@dataclass(frozen=True, slots=True)
class UdpAnnounceResponse:
    transaction_id: int
    response: AnnounceResponse


@dataclass(frozen=True, slots=True)
class UdpScrapeResponse:
    transaction_id: int
    entries: tuple[ScrapeEntry, ...]


@dataclass(frozen=True, slots=True)
class UdpErrorResponse:
    transaction_id: int
    message: str


UdpResponse = UdpConnectResponse | UdpAnnounceResponse | UdpScrapeResponse | UdpErrorResponse

_U32 = 0xFFFFFFFF


def encode_udp_request(msg: UdpRequest) -> bytes:
    if isinstance(msg, UdpConnectRequest):
        return struct.pack(">QII", UDP_PROTOCOL_ID, ACTION_CONNECT, msg.transaction_id & _U32)
    if isinstance(msg, UdpAnnounceRequest):
        r = msg.request
        check_request(r)
        ip = 0
        return struct.pack(
            ">QII20s20sQQQIIIiH",
            msg.connection_id,
            ACTION_ANNOUNCE,
            msg.transaction_id & _U32,
            r.info_hash,
            r.peer_id,
            r.downloaded,
            r.left,
            r.uploaded,
            EVENTS.index(r.event),
            ip,
            r.key & _U32,
            max(-1, min(r.numwant, 0x7FFFFFFF)),
            r.port,
        )
    if not msg.info_hashes or len(msg.info_hashes) > MAX_SCRAPE_HASHES:
        raise TrackerError(f"scrape needs 1..{MAX_SCRAPE_HASHES} info-hashes")
    head = struct.pack(">QII", msg.connection_id, ACTION_SCRAPE, msg.transaction_id & _U32)
    return head + b"".join(msg.info_hashes)


def decode_udp_request(data: bytes) -> UdpRequest:
    """Decode a datagram sent to our UDP tracker (raises TrackerError)."""
    if len(data) < 16:
        raise TrackerError("UDP tracker request shorter than 16 bytes")
    connection_id, action, tid = struct.unpack_from(">QII", data)
    if action == ACTION_CONNECT:
        if connection_id != UDP_PROTOCOL_ID:
            raise TrackerError("connect request without the protocol magic")
        return UdpConnectRequest(tid)
    if action == ACTION_ANNOUNCE:
        if len(data) < 98:
            raise TrackerError("UDP announce shorter than 98 bytes")
        (ih, pid, downloaded, left, uploaded, event, _ip, key, numwant, port) = struct.unpack_from(
            ">20s20sQQQIIIiH", data, 16
        )
        if event >= len(EVENTS):
            raise TrackerError(f"unknown UDP event {event}")
        req = AnnounceRequest(
            info_hash=ih,
            peer_id=pid,
            port=port,
            uploaded=uploaded,
            downloaded=downloaded,
            left=left,
            event=EVENTS[event],
            numwant=numwant if numwant >= 0 else 50,
            key=key,
        )
        return UdpAnnounceRequest(connection_id, tid, req)
    if action == ACTION_SCRAPE:
        body = data[16:]
        if not body or len(body) % 20 or len(body) // 20 > MAX_SCRAPE_HASHES:
            raise TrackerError("UDP scrape needs 1..74 whole info-hashes")
        hashes = tuple(body[i : i + 20] for i in range(0, len(body), 20))
        return UdpScrapeRequest(connection_id, tid, hashes)
    raise TrackerError(f"unknown UDP tracker action {action}")


def encode_udp_response(msg: UdpResponse, *, ipv6: bool = False) -> bytes:
    """Encode a reply; announce peers of the other family than ``ipv6`` are left out (BEP 15)."""
    tid = msg.transaction_id & _U32
    if isinstance(msg, UdpConnectResponse):
        return struct.pack(">IIQ", ACTION_CONNECT, tid, msg.connection_id)
    if isinstance(msg, UdpAnnounceResponse):
        r = msg.response
        head = struct.pack(
            ">IIIII", ACTION_ANNOUNCE, tid, r.interval, r.incomplete or 0, r.complete or 0
        )
        peers = b"".join(encode_peer(p) for p in r.peers if is_ipv6(p[0]) == ipv6)
        return head + peers
    if isinstance(msg, UdpScrapeResponse):
        head = struct.pack(">II", ACTION_SCRAPE, tid)
        return head + b"".join(
            struct.pack(">III", e.complete, e.downloaded, e.incomplete) for e in msg.entries
        )
    return struct.pack(">II", ACTION_ERROR, tid) + msg.message.encode("utf-8")[:1000]


def decode_udp_response(
    data: bytes, *, ipv6: bool = False, max_peers: int = MAX_PEERS
) -> UdpResponse:
    """Decode a UDP tracker reply (the peers' family follows the socket's, BEP 15)."""
    if len(data) < 8:
        raise TrackerError("UDP tracker reply shorter than 8 bytes")
    action, tid = struct.unpack_from(">II", data)
    if action == ACTION_CONNECT:
        if len(data) < 16:
            raise TrackerError("UDP connect reply shorter than 16 bytes")
        return UdpConnectResponse(tid, struct.unpack_from(">Q", data, 8)[0])
    if action == ACTION_ANNOUNCE:
        if len(data) < 20:
            raise TrackerError("UDP announce reply shorter than 20 bytes")
        interval, leechers, seeders = struct.unpack_from(">III", data, 8)
        step = 18 if ipv6 else 6
        body = data[20:]
        body = body[: len(body) - len(body) % step][: step * max_peers]
        try:
            peers = decode_peers(body, ipv6=ipv6)
        except CompactEncodingError as exc:
            raise TrackerError(f"bad compact peers: {exc}") from exc
        resp = AnnounceResponse(
            interval=interval,
            peers=tuple(p for p in peers if p[1] != 0),
            complete=seeders,
            incomplete=leechers,
        )
        return UdpAnnounceResponse(tid, resp)
    if action == ACTION_SCRAPE:
        body = data[8:]
        entries = tuple(
            ScrapeEntry(*struct.unpack_from(">III", body, i))
            for i in range(0, len(body) - len(body) % 12, 12)
        )
        return UdpScrapeResponse(tid, entries[:MAX_SCRAPE_HASHES])
    if action == ACTION_ERROR:
        return UdpErrorResponse(tid, data[8:1008].decode("utf-8", "replace"))
    raise TrackerError(f"unknown UDP tracker action {action}")
