"""Local service discovery (BEP 14): codec, rate limit, and an asyncio driver.

Announces are small HTTP-like datagrams multicast to 239.192.152.143:6771
(IPv4) or [ff15::efc0:988f]:6771 (IPv6).  A random cookie lets us ignore our
own announces echoed back by multicast loopback.  Parsing is strict and
bounded; sending is limited to one announce per torrent per ``min_interval``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from servent.errors import LsdError

log = logging.getLogger(__name__)

LSD_PORT = 6771
LSD_GROUP4 = "239.192.152.143"
LSD_GROUP6 = "ff15::efc0:988f"
MAX_DATAGRAM = 1400
MAX_INFOHASHES = 20


@dataclass(frozen=True, slots=True)
class LsdAnnounce:
    port: int
    info_hashes: tuple[bytes, ...]
    cookie: str | None = None


def encode_announce(msg: LsdAnnounce, *, ipv6: bool = False) -> bytes:
    host = f"[{LSD_GROUP6}]:{LSD_PORT}" if ipv6 else f"{LSD_GROUP4}:{LSD_PORT}"
    lines = ["BT-SEARCH * HTTP/1.1", f"Host: {host}", f"Port: {msg.port}"]
    lines += [f"Infohash: {h.hex().upper()}" for h in msg.info_hashes[:MAX_INFOHASHES]]
    if msg.cookie:
        lines.append(f"cookie: {msg.cookie}")
    return ("\r\n".join(lines) + "\r\n\r\n\r\n").encode("ascii")


def decode_announce(data: bytes) -> LsdAnnounce:
    """Parse a received announce; raises LsdError on anything malformed."""
    if len(data) > MAX_DATAGRAM:
        raise LsdError(f"LSD datagram of {len(data)} bytes")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise LsdError("LSD datagram is not ASCII") from exc
    lines = text.split("\r\n")
    if lines[0] != "BT-SEARCH * HTTP/1.1":
        raise LsdError("not a BT-SEARCH announce")
    port: int | None = None
    hashes: list[bytes] = []
    cookie: str | None = None
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise LsdError(f"malformed LSD header line {line[:40]!r}")
        name, value = name.strip().lower(), value.strip()
        if name == "port":
            if not value.isdigit() or not 0 < int(value) <= 0xFFFF:
                raise LsdError(f"bad LSD port {value[:10]!r}")
            port = int(value)
        elif name == "infohash":
            if len(value) != 40:
                raise LsdError("LSD infohash is not 40 hex digits")
            try:
                hashes.append(bytes.fromhex(value))
            except ValueError as exc:
                raise LsdError("LSD infohash is not hex") from exc
            if len(hashes) > MAX_INFOHASHES:
                raise LsdError("too many infohashes in one LSD announce")
        elif name == "cookie":
            cookie = value[:64]
    if port is None or not hashes:
        raise LsdError("LSD announce lacks a port or an infohash")
    return LsdAnnounce(port, tuple(hashes), cookie)


class LsdRateLimit:
    """At most one announce per info-hash per ``min_interval`` seconds (pure, ``now`` given)."""

    def __init__(self, min_interval: float = 300.0, max_entries: int = 10_000) -> None:
        self.min_interval = min_interval
        self.max_entries = max_entries
        self._last: dict[bytes, float] = {}

    def allow(self, info_hash: bytes, now: float) -> bool:
        last = self._last.get(info_hash)
        if last is not None and now - last < self.min_interval:
            return False
        if len(self._last) >= self.max_entries:
            self._last = {h: t for h, t in self._last.items() if now - t < self.min_interval}
            if len(self._last) >= self.max_entries:
                return False
        self._last[info_hash] = now
        return True


PeerFound = Callable[[bytes, tuple[str, int]], None]


class _LsdProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: LsdDriver) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._owner.datagram_received(data, (addr[0], addr[1]))


class LsdDriver:
    """Joins the IPv4 LSD group on ``interface`` and reports peers it hears.

    ``on_peer(info_hash, (ip, port))`` is called for every announce that is
    not ours.  ``group``/``port`` are overridable so tests stay in their own
    network namespaces.
    """

    def __init__(
        self,
        interface_ip: str,
        on_peer: PeerFound,
        *,
        group: str = LSD_GROUP4,
        port: int = LSD_PORT,
        rate_limit: LsdRateLimit | None = None,
    ) -> None:
        self.interface_ip = interface_ip
        self.group = group
        self.port = port
        self.cookie = secrets.token_hex(8)
        self._on_peer = on_peer
        self._limit = rate_limit or LsdRateLimit()
        self._transport: asyncio.DatagramTransport | None = None

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("", self.port))
        mreq = struct.pack(
            "4s4s", socket.inet_aton(self.group), socket.inet_aton(self.interface_ip)
        )
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        sock.setsockopt(
            socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(self.interface_ip)
        )
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: _LsdProtocol(self), sock=sock)
        self._transport = transport

    def announce(self, info_hash: bytes, listen_port: int, now: float) -> bool:
        """Multicast an announce unless rate-limited; True if sent."""
        if self._transport is None or not self._limit.allow(info_hash, now):
            return False
        payload = encode_announce(LsdAnnounce(listen_port, (info_hash,), self.cookie))
        self._transport.sendto(payload, (self.group, self.port))
        return True

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            msg = decode_announce(data)
        except LsdError as exc:
            log.debug("ignored LSD datagram from %s: %s", addr[0], exc)
            return
        if msg.cookie == self.cookie:
            return
        for info_hash in msg.info_hashes:
            self._on_peer(info_hash, (addr[0], msg.port))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
            self._transport = None
