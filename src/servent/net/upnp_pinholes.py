"""IPv6 pinholes through UPnP IGDv2's WANIPv6FirewallControl (``async-upnp-client``).

The router is found by an SSDP search sent by unicast to the IPv6 gateway
(often its link-local address), from our own address.  Its description and
control URLs are followed only when their host is the gateway or an address
on our own link (a router names its global or unique local address there,
not the link-local one it answered from).  HTTP leaves from our pinholed
address, because the router lets a client open pinholes for itself only.
Actions: ``AddPinhole`` (its ``UniqueID`` kept), ``UpdatePinhole`` to renew,
``DeletePinhole`` at stop.  See ``docs/port-mapping.md``, "IPv6 pinholes".
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Mapping as AnyMapping
from collections.abc import MutableMapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from async_upnp_client.aiohttp import AiohttpSessionRequester
from async_upnp_client.client import UpnpService
from async_upnp_client.client_factory import UpnpFactory
from async_upnp_client.exceptions import UpnpError

from servent.net.upnp_igd import HTTP_TIMEOUT, SSDP_PORT, find_gateway_description
from servent.proto.port_mapping import Mapping, MappingRefusedError, PortMappingError

IF_INET6_FILE = Path("/proc/net/if_inet6")
SEARCH_TARGET_V2 = "urn:schemas-upnp-org:device:InternetGatewayDevice:2"
FIREWALL_SERVICE = ":WANIPv6FirewallControl:"
MAX_LEASE = 86400
"""IGDv2's largest LeaseTime."""
_PROTOCOL_NUMBER = {"tcp": 6, "udp": 17}

PinholeIds = MutableMapping[tuple[str, int], int]
"""The router's UniqueID for each (protocol, port) pinhole: renewals and deletion name it."""


def own_link(
    address: str, table: Path = IF_INET6_FILE
) -> tuple[int, list[ipaddress.IPv6Network]] | None:
    """The interface index holding ``address`` and the prefixes on that interface."""
    try:
        rows = [line.split() for line in table.read_text().splitlines()]
        wanted = ipaddress.IPv6Address(address.split("%", 1)[0])
    except (OSError, ValueError):
        return None
    parsed = []
    for row in rows:
        with contextlib.suppress(ValueError, IndexError):
            parsed.append((ipaddress.IPv6Address(bytes.fromhex(row[0])), int(row[1], 16),
                           int(row[2], 16)))  # fmt: skip
    index = next((i for a, i, _ in parsed if a == wanted), None)
    if index is None:
        return None
    prefixes = [
        ipaddress.IPv6Network(f"{a}/{length}", strict=False)
        for a, i, length in parsed
        if i == index and not a.is_link_local and length < 128
    ]
    return index, prefixes


def on_link(host: str, gateway: str, prefixes: Sequence[ipaddress.IPv6Network]) -> bool:
    """``host`` is the gateway, or an address of a prefix on our link (never routed away)."""
    try:
        parsed = ipaddress.IPv6Address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return False
    if parsed == ipaddress.IPv6Address(gateway.split("%", 1)[0]):
        return True
    return any(parsed in prefix for prefix in prefixes)


class UpnpFirewall:
    """One IGDv2's WANIPv6FirewallControl service, for pinholes to ``local_ip``."""

    def __init__(self, service: UpnpService, local_ip: str) -> None:
        self._service = service
        self._local_ip = local_ip

    @classmethod
    async def discover(
        cls,
        gateway: str,
        local_ip: str,
        session: aiohttp.ClientSession,
        table: Path = IF_INET6_FILE,
    ) -> UpnpFirewall:
        link = own_link(local_ip, table)
        if link is None:
            raise PortMappingError(f"{local_ip} is not an address of this host")
        index, prefixes = link
        host = gateway.split("%", 1)[0]

        def trusted(url_host: str) -> bool:
            return on_link(url_host, gateway, prefixes)

        location = await find_gateway_description(
            gateway, search_target=SEARCH_TARGET_V2, source=(local_ip, 0, 0, index),
            target=(host, SSDP_PORT, 0, index), accept=trusted,
        )  # fmt: skip
        factory = UpnpFactory(AiohttpSessionRequester(session, timeout=HTTP_TIMEOUT),
                              non_strict=True)  # fmt: skip
        try:
            device = await factory.async_create_device(location)
        except (UpnpError, OSError) as exc:
            raise PortMappingError(f"UPnP description at {location} unusable: {exc}") from exc
        for service in device.all_services:
            if FIREWALL_SERVICE in service.service_type:
                if not trusted(urlsplit(service.control_url).hostname or ""):
                    raise PortMappingError("UPnP control URL points away from the gateway")
                return cls(service, local_ip)
        raise PortMappingError("the UPnP gateway has no IPv6 firewall control")

    async def _call(self, name: str, **arguments: Any) -> AnyMapping[str, object]:
        if not self._service.has_action(name):
            raise PortMappingError(f"the UPnP IPv6 firewall has no {name}")
        try:
            result: AnyMapping[str, object] = await self._service.action(name).async_call(
                **arguments
            )
        except UpnpError as exc:
            raise MappingRefusedError(f"UPnP {name} refused: {exc}") from exc
        return result

    async def add(self, protocol: str, port: int, lifetime: int) -> int:
        """Open a pinhole from anywhere to our ``port``; the router's id for it."""
        result = await self._call(
            "AddPinhole", RemoteHost="", RemotePort=0, InternalClient=self._local_ip,
            InternalPort=port, Protocol=_PROTOCOL_NUMBER[protocol], LeaseTime=lifetime,
        )  # fmt: skip
        unique_id = result.get("UniqueID")
        if not isinstance(unique_id, int):
            raise PortMappingError(f"AddPinhole answered no UniqueID: {result!r}")
        return unique_id

    async def update(self, unique_id: int, lifetime: int) -> None:
        await self._call("UpdatePinhole", UniqueID=unique_id, NewLeaseTime=lifetime)

    async def delete(self, unique_id: int) -> None:
        await self._call("DeletePinhole", UniqueID=unique_id)


async def upnp_pinholes_all(
    gateway: str,
    local_ip: str,
    ports: Sequence[tuple[str, int]],
    ids: PinholeIds,
    lifetime: int,
) -> tuple[list[Mapping], str | None]:
    """Open or renew (or, with lifetime 0, delete) the pinholes for ``ports``."""
    connector = aiohttp.TCPConnector(local_addr=(local_ip, 0), family=socket.AF_INET6)
    async with aiohttp.ClientSession(connector=connector) as session:
        firewall = await UpnpFirewall.discover(gateway, local_ip, session)
        if lifetime == 0:
            for key, unique_id in list(ids.items()):
                with contextlib.suppress(PortMappingError):
                    await firewall.delete(unique_id)
                del ids[key]
            return [], None
        lease = min(lifetime, MAX_LEASE)
        mappings = []
        for protocol, port in ports:
            known = ids.get((protocol, port))
            try:
                if known is None:
                    raise MappingRefusedError("no pinhole yet")
                await firewall.update(known, lease)
            except MappingRefusedError:  # new, or forgotten by a router that restarted
                ids[(protocol, port)] = await firewall.add(protocol, port, lease)
            mappings.append(Mapping(protocol, port, port, lease, local_ip))
        return mappings, local_ip
