"""Pinholes in the router's IPv6 firewall for our listening ports (PCP MAP over IPv6).

An IPv6 address needs no translation, but a home router's firewall drops
unsolicited inbound IPv6 until a pinhole is opened.  :class:`PinholeOpener`
is a :class:`~servent.net.port_mapper.PortMapper` that speaks to the gateway
of the default IPv6 route, from our global IPv6 address, so that the PCP MAP
it sends carries that address as the internal one (RFC 6887 §11: the router
then opens a pinhole rather than a NAT mapping).  Renewal and removal at stop
are the mapper's.  See ``docs/port-mapping.md``, "IPv6 pinholes".
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Sequence
from pathlib import Path

from servent.net.port_mapper import LEASE, MIN_RENEW, RETRY_WAITS, GatewayAnswers, PortMapper
from servent.net.upnp_pinholes import PinholeIds, upnp_pinholes_all
from servent.proto.port_mapping import SERVER_PORT, Mapping

ROUTE6_FILE = Path("/proc/net/ipv6_route")
PINHOLE_PROTOCOLS = ("pcp", "upnp")
_ANY = "0" * 32
_RTF_GATEWAY = 0x2


def default_gateway6(route_file: Path = ROUTE6_FILE) -> str | None:
    """The next hop of the default IPv6 route (``fe80::1%eth0`` when link-local), or None."""
    try:
        lines = route_file.read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 10 or fields[0] != _ANY or fields[1] != "00" or fields[4] == _ANY:
            continue
        with contextlib.suppress(ValueError):
            if not int(fields[8], 16) & _RTF_GATEWAY:
                continue
            hop = ipaddress.IPv6Address(bytes.fromhex(fields[4]))
            return f"{hop}%{fields[9]}" if hop.is_link_local else str(hop)
    return None


def can_have_pinholes(address: str | None) -> bool:
    """An IPv6 address peers outside could dial once the firewall lets them (not link-local)."""
    if address is None:
        return False
    with contextlib.suppress(ValueError):
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
        return (
            isinstance(parsed, ipaddress.IPv6Address)
            and parsed.ipv4_mapped is None
            and not (parsed.is_link_local or parsed.is_loopback or parsed.is_unspecified)
            and not parsed.is_multicast
        )
    return False


class PinholeOpener(PortMapper):
    """Opens (and renews, and closes at stop) pinholes for ``ports`` on ``local_ip``."""

    def __init__(
        self,
        ports: Sequence[tuple[str, int]],
        *,
        local_ip: str,
        gateway: str | None = None,
        protocols: Sequence[str] = PINHOLE_PROTOCOLS,
        lifetime: int = LEASE,
        retry_waits: Sequence[float] = RETRY_WAITS,
        server_port: int = SERVER_PORT,
        min_renew: float = MIN_RENEW,
    ) -> None:
        if not can_have_pinholes(local_ip):
            raise ValueError(f"no pinhole can be opened for {local_ip!r}")
        unknown = set(protocols) - set(PINHOLE_PROTOCOLS)
        if unknown:
            raise ValueError(f"pinholes are opened with {PINHOLE_PROTOCOLS}, not {unknown}")
        super().__init__(
            ports, gateway=gateway, protocols=protocols, lifetime=lifetime,
            retry_waits=retry_waits, server_port=server_port, min_renew=min_renew,
        )  # fmt: skip
        self.local_ip = local_ip.split("%", 1)[0]
        self._upnp_ids: PinholeIds = {}

    def _find_gateway(self) -> str | None:
        return default_gateway6()

    async def _upnp_request_all(
        self, gateway: str, lifetime: int
    ) -> tuple[list[Mapping], str | None]:
        """UPnP IGDv2's WANIPv6FirewallControl, when the router does not speak PCP."""
        return await upnp_pinholes_all(gateway, self.local_ip, self.ports, self._upnp_ids, lifetime)

    async def _open_endpoint(
        self, gateway: str
    ) -> tuple[asyncio.DatagramTransport, GatewayAnswers]:
        """Bound to our own address: the router opens the pinhole for the request's source."""
        source = (gateway, self._server_port)
        return await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: GatewayAnswers(source),
            local_addr=(self.local_ip, 0),
            remote_addr=source,
            family=socket.AF_INET6,
        )
