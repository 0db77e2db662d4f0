"""UPnP IGD port mapping through ``async-upnp-client``, asked of the gateway only.

The router is found by an SSDP search sent by unicast to the gateway (not to
the multicast group: nothing else on the LAN is asked), and its description
and control URLs are used only when they point at the gateway itself.  The
actions are WANIPConnection's (or WANPPPConnection's) ``AddPortMapping``,
``DeletePortMapping`` and ``GetExternalIPAddress``.  See ``docs/port-mapping.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Sequence
from collections.abc import Mapping as AnyMapping
from typing import Any
from urllib.parse import urlsplit

from async_upnp_client.aiohttp import AiohttpRequester
from async_upnp_client.client import UpnpAction, UpnpDevice
from async_upnp_client.client_factory import UpnpFactory
from async_upnp_client.exceptions import UpnpError
from async_upnp_client.search import SsdpSearchListener

from servent.proto.port_mapping import Mapping, MappingRefusedError, PortMappingError

log = logging.getLogger(__name__)

SSDP_PORT = 1900
SEARCH_TARGET = "urn:schemas-upnp-org:device:InternetGatewayDevice:1"
SEARCH_WAIT = 2
HTTP_TIMEOUT = 5
_CONNECTION_SERVICES = ("WANIPConnection", "WANPPPConnection")
DESCRIPTION = "servent"


async def find_gateway_description(
    gateway: str,
    wait: float = SEARCH_WAIT,
    *,
    search_target: str = SEARCH_TARGET,
    source: tuple[str, int, int, int] | None = None,
    target: tuple[str, int, int, int] | None = None,
    accept: Callable[[str], bool] | None = None,
) -> str:
    """The gateway's device description URL, from its answer to a unicast SSDP search.

    IPv6 needs ``source`` and ``target`` with their scope (interface index);
    ``accept`` says which description hosts are the gateway's (default: its own address)."""
    found: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    trusted = accept or (lambda host: host == gateway)

    def answer(headers: AnyMapping[str, str]) -> None:
        location = headers.get("location") or headers.get("LOCATION") or ""
        if trusted(urlsplit(location).hostname or "") and not found.done():
            found.set_result(location)

    listener = SsdpSearchListener(
        callback=answer,
        source=source,
        target=target or (gateway, SSDP_PORT),
        search_target=search_target,
        timeout=max(1, int(wait)),
    )
    await listener.async_start()
    try:
        listener.async_search()
        async with asyncio.timeout(wait):
            return await found
    except TimeoutError as exc:
        raise TimeoutError("no UPnP IGD answered the search") from exc
    finally:
        listener.async_stop()


class UpnpGateway:
    """One IGD's connection service: map, unmap, tell the external address."""

    def __init__(self, device: UpnpDevice, gateway: str) -> None:
        self._device = device
        self._gateway = gateway

    @classmethod
    async def discover(cls, gateway: str) -> UpnpGateway:
        location = await find_gateway_description(gateway)
        factory = UpnpFactory(AiohttpRequester(HTTP_TIMEOUT), non_strict=True)
        try:
            device = await factory.async_create_device(location)
        except (UpnpError, OSError) as exc:
            raise PortMappingError(f"UPnP description at {location} unusable: {exc}") from exc
        return cls(device, gateway)

    def _action(self, name: str) -> UpnpAction:
        for service in self._device.all_services:
            kind = service.service_type
            if any(f":{n}:" in kind for n in _CONNECTION_SERVICES) and service.has_action(name):
                if urlsplit(service.control_url).hostname != self._gateway:
                    raise PortMappingError("UPnP control URL points away from the gateway")
                return service.action(name)
        raise PortMappingError(f"the UPnP gateway has no {name}")

    async def _call(self, name: str, **arguments: Any) -> AnyMapping[str, object]:
        try:
            result: AnyMapping[str, object] = await self._action(name).async_call(**arguments)
        except UpnpError as exc:
            raise MappingRefusedError(f"UPnP {name} refused: {exc}") from exc
        return result

    async def external_ip(self) -> str | None:
        result = await self._call("GetExternalIPAddress")
        address = result.get("NewExternalIPAddress")
        return address if isinstance(address, str) and address else None

    async def map(self, protocol: str, port: int, external_port: int, lifetime: int) -> Mapping:
        await self._call(
            "AddPortMapping",
            NewRemoteHost="",
            NewExternalPort=external_port,
            NewProtocol=protocol.upper(),
            NewInternalPort=port,
            NewInternalClient=local_address_towards(self._gateway),
            NewEnabled=True,
            NewPortMappingDescription=DESCRIPTION,
            NewLeaseDuration=lifetime,
        )
        return Mapping(protocol, port, external_port, lifetime, None)

    async def unmap(self, protocol: str, external_port: int) -> None:
        await self._call(
            "DeletePortMapping",
            NewRemoteHost="",
            NewExternalPort=external_port,
            NewProtocol=protocol.upper(),
        )


def local_address_towards(gateway: str) -> str:
    """The address of this host on the gateway's network (a connected UDP socket sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((gateway, SSDP_PORT))
        return str(probe.getsockname()[0])


async def upnp_request_all(
    gateway: str,
    ports: Sequence[tuple[str, int]],
    previous: AnyMapping[tuple[str, int], int],
    lifetime: int,
) -> tuple[list[Mapping], str | None]:
    """Map (or, with lifetime 0, delete) ``ports`` on the gateway's IGD."""
    igd = await UpnpGateway.discover(gateway)
    if lifetime == 0:
        for protocol, port in ports:
            with contextlib.suppress(PortMappingError):
                await igd.unmap(protocol, previous.get((protocol, port), port))
        return [], None
    mappings = [
        await igd.map(protocol, port, previous.get((protocol, port), port), lifetime)
        for protocol, port in ports
    ]
    return mappings, await igd.external_ip()
