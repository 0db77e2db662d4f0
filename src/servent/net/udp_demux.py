"""One UDP port shared by uTP and the DHT (as libtorrent does).

A :class:`UdpPort` owns one bound socket and reads it once per wake-up; each
datagram goes to the uTP handler when its first byte looks like a uTP header
(version 1 in the low nibble, type 0..4 in the high one, at least 20 bytes),
to the other handler (the DHT: bencoded messages start with ``d``) otherwise.
Handlers receive batches, so each can answer a burst with one pump.
Datagrams leave with the don't-fragment bit (uTP's path MTU search); one the
kernel refuses as too big is sent again with fragmentation allowed, so the
DHT behaves as under the kernel's default.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
from collections.abc import Callable

from servent.net.dont_fragment import send_fragmenting, set_dont_fragment
from servent.proto.utp.packet import looks_like_utp

__all__ = ["BatchHandler", "UdpPort", "open_udp_socket"]

log = logging.getLogger(__name__)

#: ``handler(datagrams, now)`` with ``datagrams`` a list of ``(data, (host, port))``.
BatchHandler = Callable[[list[tuple[bytes, tuple[str, int]]], float], None]

#: Datagrams read per wake-up before the handlers run.
READ_BATCH = 128
#: Kernel buffers asked for: a uTP burst at full rate waits there, not in Python.
SOCKET_BUFFER = 4 << 20


def open_udp_socket(host: str, port: int) -> socket.socket:
    """A bound non-blocking UDP socket; IPv6 sockets are v6-only so v4 can share the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, SOCKET_BUFFER)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


class UdpPort:
    """A bound UDP socket whose datagrams are split between uTP and another protocol."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.utp_handler: BatchHandler | None = None
        self.other_handler: BatchHandler | None = None
        self.unclaimed = 0
        self.dont_fragment = set_dont_fragment(sock)
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def bind(cls, host: str, port: int) -> UdpPort:
        return cls(open_udp_socket(host, port))

    @property
    def address(self) -> tuple[str, int]:
        name = self.sock.getsockname()
        return str(name[0]), int(name[1])

    def start(self) -> None:
        """Start reading (idempotent)."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(self.sock.fileno(), self._read_ready)

    def close(self) -> None:
        if self._loop is not None and self.sock.fileno() >= 0:
            self._loop.remove_reader(self.sock.fileno())
        self.sock.close()

    def sendto(self, data: bytes, addr: tuple[str, int]) -> bool:
        """Send one datagram; False if the kernel buffer is full or the address unreachable."""
        try:
            self.sock.sendto(data, addr)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE and self.dont_fragment:
                return send_fragmenting(self.sock, data, addr)
            log.debug("cannot send to %s: %s", addr, exc)
            return False
        except ValueError as exc:
            log.debug("cannot send to %s: %s", addr, exc)
            return False
        return True

    def _read_ready(self) -> None:
        assert self._loop is not None
        utp: list[tuple[bytes, tuple[str, int]]] = []
        other: list[tuple[bytes, tuple[str, int]]] = []
        recvfrom = self.sock.recvfrom
        for _ in range(READ_BATCH):
            try:
                data, addr = recvfrom(65536)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # an ICMP error reported on the socket
                log.debug("UDP receive error: %s", exc)
                continue
            (utp if looks_like_utp(data) else other).append((data, (addr[0], addr[1])))
        now = self._loop.time()
        for batch, handler in ((utp, self.utp_handler), (other, self.other_handler)):
            if not batch:
                continue
            if handler is None:
                self.unclaimed += len(batch)
            else:
                handler(batch, now)
