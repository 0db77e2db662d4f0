"""Tracker message types and limits shared by the HTTP and UDP codecs (BEP 3, 15, 48)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from servent.codec.compact import Address
from servent.errors import TrackerError

MAX_HTTP_RESPONSE = 2 * 1024 * 1024
"""Largest HTTP tracker body we read; anything bigger is hostile."""
MAX_PEERS = 2000
"""Most peers taken from one answer; the rest are ignored."""
MAX_SCRAPE_HASHES = 74
"""Most info-hashes in one scrape (what fits one UDP datagram, BEP 15)."""

EVENTS = ("", "completed", "started", "stopped")
"""Announce events; the index is the UDP event code (BEP 15)."""

UDP_PROTOCOL_ID = 0x41727101980
ACTION_CONNECT, ACTION_ANNOUNCE, ACTION_SCRAPE, ACTION_ERROR = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class AnnounceRequest:
    """What a client tells a tracker (both transports)."""

    info_hash: bytes
    peer_id: bytes
    port: int
    uploaded: int = 0
    downloaded: int = 0
    left: int = 0
    event: str = ""
    numwant: int = 50
    compact: bool = True
    key: int = 0
    ip: str | None = None


@dataclass(frozen=True, slots=True)
class AnnounceResponse:
    """A tracker's answer: when to come back and whom to contact."""

    interval: int
    peers: tuple[Address, ...] = ()
    min_interval: int | None = None
    complete: int | None = None
    incomplete: int | None = None
    tracker_id: bytes | None = None
    warning: str | None = None


@dataclass(frozen=True, slots=True)
class ScrapeEntry:
    """Swarm counts for one info-hash."""

    complete: int = 0
    downloaded: int = 0
    incomplete: int = 0


@dataclass(frozen=True, slots=True)
class ScrapeResponse:
    files: Mapping[bytes, ScrapeEntry] = field(default_factory=dict)


def check_request(req: AnnounceRequest) -> None:
    """Reject an announce no tracker could accept (both transports)."""
    if len(req.info_hash) != 20 or len(req.peer_id) != 20:
        raise TrackerError("info_hash and peer_id must be 20 bytes")
    if not 0 <= req.port <= 0xFFFF:
        raise TrackerError(f"port {req.port} out of range")
    if req.event not in EVENTS:
        raise TrackerError(f"unknown announce event {req.event!r}")
