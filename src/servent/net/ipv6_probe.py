"""Can this host use IPv6 at all?  Asked before listening on every IPv6 address.

Binding ``::`` succeeds even where IPv6 is switched off
(``net.ipv6.conf.all.disable_ipv6 = 1``): the socket exists but no address
does, so listening there would only mislead the status and the pinhole
opener.  Connecting a UDP socket to ``::1`` is a routing-table lookup (no
packet leaves): it fails exactly when the host has no usable IPv6.
"""

from __future__ import annotations

import socket

__all__ = ["ipv6_unavailable"]

#: Any port: a UDP ``connect`` sends nothing.
_PROBE_PORT = 9


def ipv6_unavailable() -> str | None:
    """Why IPv6 cannot be used here, or None when it can."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.connect(("::1", _PROBE_PORT))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
