"""This host's address as peers on the local network reach it (for ``x.pe`` in magnets).

A node listening on a wildcard address (0.0.0.0 or ::) cannot hand that
address to a peer.  The address the operating system would send from is the
one peers on the same network reach: a UDP socket that is *connected* (no
datagram is sent) to a documentation address learns it from the routing
table.  Without a route, the loopback address is the honest fallback.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket

#: Documentation addresses (RFC 5737, RFC 3849): only used to ask the routing table.
PROBE_V4 = "192.0.2.1"
PROBE_V6 = "2001:db8::1"


def advertised_address(listen: tuple[str, int]) -> tuple[str, int]:
    """``listen`` with a wildcard host replaced by the address this host sends from."""
    host, port = listen
    try:
        parsed = ipaddress.ip_address(host)
    except ValueError:
        return host, port  # a host name: peers resolve it themselves
    if not parsed.is_unspecified:
        return host, port
    family = socket.AF_INET6 if parsed.version == 6 else socket.AF_INET
    return route_source(family) or ("::1" if parsed.version == 6 else "127.0.0.1"), port


def route_source(family: socket.AddressFamily) -> str | None:
    """The local address the routing table picks for the outside, or None without a route."""
    probe = PROBE_V6 if family == socket.AF_INET6 else PROBE_V4
    with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((probe, 9))  # connect() on UDP sends nothing
        address = str(sock.getsockname()[0])
        if not ipaddress.ip_address(address.split("%", maxsplit=1)[0]).is_unspecified:
            return address
    return None
