"""Priming a NAT for a hole punch: one byte with a small TTL from the uTP port.

The datagram opens our NAT's mapping towards the peer and dies before it
reaches the peer's router, so neither router holds an unanswered entry for
the other's flow when the real packets cross (decision 0042).
"""

from __future__ import annotations

import logging
import socket

from servent.codec.compact import Address
from servent.net.utp_socket import UtpSocket

__all__ = ["DIAL_DELAY", "PRIME_TTL", "prime_nat"]

log = logging.getLogger(__name__)

PRIME_TTL = 2
#: A punching side dials this long after priming (the other side primes meanwhile).
DIAL_DELAY = 0.3


def prime_nat(utp: UtpSocket, address: Address, ttl: int = PRIME_TTL) -> bool:
    """One zero byte to ``address`` with IP TTL ``ttl`` from the uTP port; False if none."""
    host, port = address
    try:
        udp = utp._port_for(host)
    except OSError:
        return False
    sock = udp.sock
    level, option = (
        (socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS)
        if ":" in host
        else (socket.IPPROTO_IP, socket.IP_TTL)
    )
    try:
        before = sock.getsockopt(level, option)
        sock.setsockopt(level, option, ttl)
        try:
            sock.sendto(b"\0", (host, port))
        finally:
            sock.setsockopt(level, option, before)
    except OSError as exc:
        log.info("cannot prime the NAT towards %s:%d: %s", host, port, exc)
        return False
    return True
