"""The don't-fragment bit on a UDP socket, and the kernel's view of a path's MTU (Linux).

uTP's path MTU search (docs/utp.md, "Path MTU") needs every datagram sent
with DF, so an acknowledgement proves its size passed, and a way to send one
datagram that may be fragmented (a packet that no longer fits must still
arrive). Python's ``socket`` module lacks these Linux constants: they are
spelled out here. Elsewhere every function reports "not available".
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
from collections.abc import Iterator

__all__ = ["route_mtu", "send_fragmenting", "set_dont_fragment"]

log = logging.getLogger(__name__)

LINUX = sys.platform.startswith("linux")
# <linux/in.h> and <linux/in6.h>
IP_MTU_DISCOVER = 10
IP_MTU = 14
IPV6_MTU_DISCOVER = 23
IPV6_MTU = 24
IPV6_DONTFRAG = 62
PMTUDISC_DONT = 0  # never set DF; fragment as needed
PMTUDISC_DO = 2  # always set DF; EMSGSIZE above the known path MTU
#: IPv6 routers never fragment: a datagram that may be fragmented is cut by us at this size.
IPV6_MIN_MTU = 1280


def _is_ipv6(sock: socket.socket) -> bool:
    return sock.family == socket.AF_INET6


def set_dont_fragment(sock: socket.socket) -> bool:
    """Set DF on every datagram of ``sock``; False where that is not possible."""
    if not LINUX:
        return False
    try:
        if _is_ipv6(sock):
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, PMTUDISC_DO)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_DONTFRAG, 1)
        else:
            sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, PMTUDISC_DO)
    except OSError as exc:
        log.info("no don't-fragment bit on UDP (%s): uTP keeps fixed packet sizes", exc)
        return False
    return True


def send_fragmenting(sock: socket.socket, data: bytes, address: tuple[str, int]) -> bool:
    """Send one datagram that the kernel (and IPv4 routers) may fragment; DF is set again after."""
    try:
        with _fragmentation_allowed(sock):
            sock.sendto(data, address)
    except OSError as exc:  # a full buffer included: the sender's timer resends it
        log.debug("cannot send %d bytes to %s: %s", len(data), address, exc)
        return False
    return True


@contextlib.contextmanager
def _fragmentation_allowed(sock: socket.socket) -> Iterator[None]:
    if _is_ipv6(sock):
        options = [(IPV6_MTU_DISCOVER, PMTUDISC_DONT, PMTUDISC_DO), (IPV6_DONTFRAG, 0, 1)]
        options.append((IPV6_MTU, IPV6_MIN_MTU, 0))
        level = socket.IPPROTO_IPV6
    else:
        options = [(IP_MTU_DISCOVER, PMTUDISC_DONT, PMTUDISC_DO)]
        level = socket.IPPROTO_IP
    for option, during, _ in options:
        sock.setsockopt(level, option, during)
    try:
        yield
    finally:
        for option, _, after in options:
            sock.setsockopt(level, option, after)


def route_mtu(address: tuple[str, int]) -> int | None:
    """The MTU the kernel would use toward ``address`` (interface, or path MTU learned from
    ICMP); ``None`` if unknown. A connected UDP socket sends nothing."""
    if not LINUX:
        return None
    ipv6 = ":" in address[0]
    try:
        with socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(address)
            if ipv6:
                return int(probe.getsockopt(socket.IPPROTO_IPV6, IPV6_MTU))
            return int(probe.getsockopt(socket.IPPROTO_IP, IP_MTU))
    except OSError:
        return None
