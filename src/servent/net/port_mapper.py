"""Asks the default gateway to forward our ports (PCP, then NAT-PMP) and keeps the leases.

The codecs live in :mod:`servent.proto.port_mapping`; this module owns the
UDP socket, the retry timers and the renewal task.  Requests go to one
address only: the gateway of the default IPv4 route (or the one given).
See ``docs/port-mapping.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import aiohttp
from async_upnp_client.exceptions import UpnpError

from servent.net.upnp_igd import upnp_request_all
from servent.proto.port_mapping import (
    MAX_ANSWER,
    SERVER_PORT,
    Mapping,
    MappingRefusedError,
    PortMappingError,
    UnsupportedVersionError,
    natpmp_address_request,
    natpmp_map_request,
    parse_natpmp_address,
    parse_natpmp_map,
    parse_pcp_map,
    pcp_map_request,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_WAITS = (0.25, 0.5, 1.0, 2.0)
"""Seconds to wait for each (re)sent request: RFC 6886's schedule, cut short."""
LEASE = 7200
MIN_RENEW = 60.0
ROUTE_FILE = Path("/proc/net/route")
PROTOCOLS = ("pcp", "natpmp", "upnp")
#: What a failed attempt may raise (anything else is a bug).
FAILURES = (PortMappingError, OSError, TimeoutError, UpnpError, aiohttp.ClientError)


def default_gateway(route_file: Path = ROUTE_FILE) -> str | None:
    """The IPv4 gateway of the default route (Linux ``/proc/net/route``), or None."""
    try:
        lines = route_file.read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[1] != "00000000":
            continue
        flags = int(fields[3], 16)
        if flags & 0x2:  # RTF_GATEWAY
            return str(ipaddress.IPv4Address(struct.pack("<I", int(fields[2], 16))))
    return None


@dataclass(slots=True)
class MappingResult:
    """What the router granted (or why not); read by the reachability report."""

    gateway: str | None = None
    protocol: str | None = None
    mappings: list[Mapping] = field(default_factory=list)
    external_ip: str | None = None
    error: str | None = None

    @property
    def mapped(self) -> bool:
        return bool(self.mappings)


def _same_endpoint(addr: tuple[str | object, ...], source: tuple[str, int]) -> bool:
    """``addr`` (as recvfrom gives it) is ``source``; an IPv6 scope (``%eth0``) is ignored."""
    if len(addr) < 2 or addr[1] != source[1]:
        return False
    try:
        seen = ipaddress.ip_address(str(addr[0]).split("%", 1)[0])
        return seen == ipaddress.ip_address(source[0].split("%", 1)[0])
    except ValueError:
        return False


class GatewayAnswers(asyncio.DatagramProtocol):
    """Datagrams from the gateway's port 5351 only, queued (a few) for the request waiting."""

    def __init__(self, source: tuple[str, int]) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=16)
        self._source = source

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        if not _same_endpoint(addr, self._source) or len(data) > MAX_ANSWER:
            return  # only the gateway's port 5351 answers
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(data)


class PortMapper:
    """Maps ``ports`` (``[("tcp", 6881), ("udp", 6881)]``) on the gateway and renews them."""

    def __init__(
        self,
        ports: Sequence[tuple[str, int]],
        *,
        gateway: str | None = None,
        protocols: Sequence[str] = PROTOCOLS,
        lifetime: int = LEASE,
        retry_waits: Sequence[float] = RETRY_WAITS,
        server_port: int = SERVER_PORT,
        min_renew: float = MIN_RENEW,
    ) -> None:
        self.ports = list(ports)
        self.result = MappingResult(gateway=gateway)
        self._protocols = list(protocols)
        self._lifetime = lifetime
        self._waits = tuple(retry_waits)
        self._server_port = server_port
        self._min_renew = min_renew
        self._renewal: asyncio.Task[None] | None = None
        self._nonces = {key: os.urandom(12) for key in self.ports}
        """One PCP nonce per mapping: renewals and the deletion must repeat it (RFC 6887)."""

    async def start(self) -> MappingResult:
        """Map every port once (a few seconds at most without a router); renew them later."""
        if self.result.gateway is None:
            self.result.gateway = self._find_gateway()
        if self.result.gateway is None:
            self.result.error = "no default gateway"
            log.info("port mapping: no default gateway")
            return self.result
        await self._map_all(self._lifetime)
        if self.result.mapped:
            self._renewal = asyncio.get_running_loop().create_task(
                self._renew_forever(), name="port-mapping-renewal"
            )
        return self.result

    async def close(self) -> None:
        """Stop renewing and delete our mappings (best effort, bounded)."""
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
            self._renewal = None
        if self.result.mapped:
            with contextlib.suppress(*FAILURES):
                await self._request_all(self.result.protocol or "natpmp", 0)
            self.result.mappings = []

    async def renew(self) -> MappingResult:
        """Ask again now, for the same ports (what the renewal task does at half the lease)."""
        await self._map_all(self._lifetime)
        return self.result

    async def _renew_forever(self) -> None:
        while True:
            lifetimes = [m.lifetime for m in self.result.mappings] or [self._lifetime]
            await asyncio.sleep(max(self._min_renew, min(lifetimes) / 2))
            await self.renew()

    async def _map_all(self, lifetime: int) -> None:
        errors: list[str] = []
        protocols = [self.result.protocol] if self.result.protocol else self._protocols
        for protocol in protocols:
            assert protocol is not None
            try:
                mappings, external = await self._request_all(protocol, lifetime)
            except FAILURES as exc:
                errors.append(f"{protocol}: {exc or 'no answer'}")
                continue
            self.result.protocol = protocol
            self.result.mappings = mappings
            self.result.external_ip = external
            self.result.error = None
            log.info(
                "port mapping (%s) via %s: %s, external address %s",
                protocol,
                self.result.gateway,
                _describe(mappings),
                external,
            )
            return
        self.result.mappings = []
        self.result.error = "; ".join(errors)
        log.info("port mapping failed via %s: %s", self.result.gateway, self.result.error)

    def _find_gateway(self) -> str | None:
        return default_gateway()

    async def _open_endpoint(
        self, gateway: str
    ) -> tuple[asyncio.DatagramTransport, GatewayAnswers]:
        """A UDP socket connected to the gateway's PCP/NAT-PMP port."""
        source = (gateway, self._server_port)
        return await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: GatewayAnswers(source), remote_addr=source, family=socket.AF_INET
        )

    async def _upnp_request_all(
        self, gateway: str, lifetime: int
    ) -> tuple[list[Mapping], str | None]:
        had = {(m.protocol, m.internal_port): m.external_port for m in self.result.mappings}
        return await upnp_request_all(gateway, self.ports, had, lifetime)

    async def _request_all(self, protocol: str, lifetime: int) -> tuple[list[Mapping], str | None]:
        gateway = self.result.gateway
        assert gateway is not None
        if protocol == "upnp":
            return await self._upnp_request_all(gateway, lifetime)
        transport, answers = await self._open_endpoint(gateway)
        try:
            client_ip = str(transport.get_extra_info("sockname")[0])
            mappings: list[Mapping] = []
            external = None
            for proto, port in self.ports:
                previous = self._previous_port(proto, port)
                if protocol == "pcp":
                    nonce = self._nonces[(proto, port)]
                    request = pcp_map_request(
                        proto, port, previous, lifetime, client_ip=client_ip, nonce=nonce
                    )
                    parse: Callable[[bytes], Mapping] = _pcp_parser(proto, port, nonce)
                else:
                    request = natpmp_map_request(proto, port, previous if lifetime else 0, lifetime)
                    parse = _natpmp_parser(proto, port)
                mapping = await _exchange(transport, answers, request, parse, self._waits)
                external = external or mapping.external_ip
                mappings.append(mapping)
            if protocol == "natpmp" and lifetime:
                external = await _exchange(
                    transport, answers, natpmp_address_request(), parse_natpmp_address, self._waits
                )
            return mappings, external
        finally:
            transport.close()

    def _previous_port(self, protocol: str, port: int) -> int:
        """Ask for the external port we had (renewal) or the internal one (first time)."""
        for mapping in self.result.mappings:
            if mapping.protocol == protocol and mapping.internal_port == port:
                return mapping.external_port
        return port


def _pcp_parser(protocol: str, port: int, nonce: bytes) -> Callable[[bytes], Mapping]:
    return lambda data: parse_pcp_map(data, protocol, port, nonce)


def _natpmp_parser(protocol: str, port: int) -> Callable[[bytes], Mapping]:
    return lambda data: parse_natpmp_map(data, protocol, port)


async def _exchange(
    transport: asyncio.DatagramTransport,
    answers: GatewayAnswers,
    request: bytes,
    parse: Callable[[bytes], T],
    waits: Sequence[float],
) -> T:
    """Send ``request`` until an answer parses; garbage is ignored, a refusal ends it."""
    loop = asyncio.get_running_loop()
    for wait in waits:
        transport.sendto(request)
        deadline = loop.time() + wait
        while (remaining := deadline - loop.time()) > 0:
            try:
                data = await asyncio.wait_for(answers.queue.get(), remaining)
            except TimeoutError:
                break
            try:
                return parse(data)
            except (MappingRefusedError, UnsupportedVersionError):
                raise
            except PortMappingError as exc:
                log.debug("port mapping: ignored answer: %s", exc)
    raise TimeoutError(f"no answer from the gateway after {len(waits)} tries")


def _describe(mappings: Sequence[Mapping]) -> str:
    return ", ".join(
        f"{m.protocol} {m.internal_port}->{m.external_port} ({m.lifetime}s)" for m in mappings
    )
