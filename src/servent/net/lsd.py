"""Local service discovery (BEP 14): codec, rate limit, and an asyncio driver.

Announces are small HTTP-like datagrams multicast to 239.192.152.143:6771
(IPv4) and [ff15::efc0:988f]:6771 (IPv6); the driver joins both when it can.
A random cookie lets us ignore our own announces echoed back by multicast
loopback.  Parsing is strict and
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

from servent.errors import ConfigError, LsdError

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
#: An IPv6 interface: its name ("eth0"), its index, or None for the default one.
Interface6 = str | int | None


def interface_index(interface: Interface6) -> int:
    """The kernel index of an IPv6 interface given by name or index (0: the default)."""
    if interface is None:
        return 0
    if isinstance(interface, int):
        index = interface
    elif interface.isdigit():
        index = int(interface)
    else:
        try:
            return socket.if_nametoindex(interface)
        except OSError as exc:
            raise ConfigError(f"LSD: no network interface named {interface!r}") from exc
    if index < 0:
        raise ConfigError(f"LSD: bad interface index {index}")
    return index


class _LsdProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: LsdDriver) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._owner.datagram_received(data, (addr[0], addr[1]))

    def error_received(self, exc: Exception) -> None:
        log.debug("LSD socket error: %s", exc)


def _ipv4_socket(group: str, port: int, interface_ip: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("", port))
        mreq = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton(interface_ip))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface_ip))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    except OSError:
        sock.close()
        raise
    return sock


def _ipv6_socket(group: str, port: int, index: int) -> socket.socket:
    """A socket in the IPv6 group on interface ``index`` (IPv6 only: the IPv4 socket
    holds the same port number)."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(("::", port))
        mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        if index:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
    except OSError:
        sock.close()
        raise
    return sock


class LsdDriver:
    """Joins the LSD groups (IPv4 on ``interface_ip``, IPv6 on ``interface6``) and
    reports peers it hears.

    Each family is joined when the host has it: a machine without IPv6 (or
    without an IPv4 route for multicast) still does LSD on the other one, and
    announces go out on every family joined.  ``on_peer(info_hash, (ip, port))``
    is called for every announce that is not ours.  Groups and port are
    overridable so tests stay in their own network namespaces.
    """

    def __init__(
        self,
        interface_ip: str,
        on_peer: PeerFound,
        *,
        group: str = LSD_GROUP4,
        port: int = LSD_PORT,
        rate_limit: LsdRateLimit | None = None,
        ipv4: bool = True,
        ipv6: bool = False,
        interface6: Interface6 = None,
        group6: str = LSD_GROUP6,
    ) -> None:
        self.interface_ip = interface_ip
        self.group = group
        self.group6 = group6
        self.port = port
        self.ipv4 = ipv4
        self.ipv6 = ipv6
        self.interface6 = interface6
        self.cookie = secrets.token_hex(8)
        self._on_peer = on_peer
        self._limit = rate_limit or LsdRateLimit()
        self._transport: asyncio.DatagramTransport | None = None
        self._transport6: asyncio.DatagramTransport | None = None

    @property
    def families(self) -> tuple[str, ...]:
        """The families joined: ``("ipv4", "ipv6")``, one of them, or none before start."""
        joined = (("ipv4", self._transport), ("ipv6", self._transport6))
        return tuple(name for name, transport in joined if transport is not None)

    async def start(self) -> None:
        """Join every family asked for that works; OSError only when none does."""
        loop = asyncio.get_running_loop()
        errors: list[str] = []
        index = interface_index(self.interface6) if self.ipv6 else 0
        if self.ipv4:
            try:
                sock = _ipv4_socket(self.group, self.port, self.interface_ip)
            except OSError as exc:
                errors.append(f"IPv4 group {self.group} on {self.interface_ip}: {exc}")
            else:
                self.port = sock.getsockname()[1]  # port 0 (tests): the IPv6 socket shares it
                self._transport, _ = await loop.create_datagram_endpoint(
                    lambda: _LsdProtocol(self), sock=sock
                )
        if self.ipv6:
            try:
                sock = _ipv6_socket(self.group6, self.port, index)
            except OSError as exc:
                errors.append(f"IPv6 group {self.group6} on interface {index}: {exc}")
            else:
                self.port = sock.getsockname()[1]
                self._transport6, _ = await loop.create_datagram_endpoint(
                    lambda: _LsdProtocol(self), sock=sock
                )
        if not self.families:
            raise OSError("LSD joined no multicast group: " + "; ".join(errors))
        for error in errors:
            log.info("LSD without %s", error)

    def announce(self, info_hash: bytes, listen_port: int, now: float) -> bool:
        """Multicast an announce on every family joined, unless rate-limited; True if sent."""
        if not self.families or not self._limit.allow(info_hash, now):
            return False
        message = LsdAnnounce(listen_port, (info_hash,), self.cookie)
        if self._transport is not None:
            self._transport.sendto(encode_announce(message), (self.group, self.port))
        if self._transport6 is not None:
            payload = encode_announce(message, ipv6=True)
            self._transport6.sendto(payload, (self.group6, self.port))
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
        for transport in (self._transport, self._transport6):
            if transport is not None:
                transport.close()
        self._transport = self._transport6 = None
