"""The port mapping driver against a small NAT-PMP responder on loopback.

The responder speaks only NAT-PMP: a PCP request gets NAT-PMP's
"unsupported version", so the driver must fall back.  It grants 2-second
leases, which makes the renewal observable, and it sends garbage and answers
for other ports before each real answer, which the driver must ignore.
"""

from __future__ import annotations

import asyncio
import struct
import time
from typing import cast

import pytest

from servent.net.port_mapper import PortMapper

pytestmark = pytest.mark.e2e

LOOPBACK = "127.0.0.1"
LEASE = 2
DEADLINE = 30.0


class NatPmpResponder(asyncio.DatagramProtocol):
    def __init__(self, *, silent: bool = False) -> None:
        self.silent = silent
        self.requests: list[bytes] = []
        self.renewed = asyncio.Event()
        """Set once port 7001 was asked for three times (mapped, then renewed twice)."""
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.requests.append(data)
        if self.maps(lifetime_zero=False).count((2, 7001)) >= 3:
            self.renewed.set()
        if self.silent or self.transport is None:
            return
        send = self.transport.sendto
        if data[0] != 0:  # PCP: "unsupported version", in NAT-PMP's own format
            send(struct.pack("!BBHI", 0, 128 + (data[1] & 0x7F), 1, 0), addr)
            return
        send(b"\xff" * 2000, addr)  # hostile: too long
        send(b"\x00", addr)  # hostile: too short
        if data[1] == 0:
            send(struct.pack("!BBHI", 0, 128, 0, 7) + bytes([11, 77, 0, 1]), addr)
            return
        _, opcode, _, internal, external, lifetime = struct.unpack("!BBHHHI", data)
        other = struct.pack("!BBHIHHI", 0, 128 + opcode, 0, 7, internal ^ 1, external, 60)
        send(other, addr)  # an answer for another port
        granted = min(lifetime, LEASE)
        send(
            struct.pack("!BBHIHHI", 0, 128 + opcode, 0, 7, internal, internal + 1000, granted), addr
        )

    def maps(self, lifetime_zero: bool) -> list[tuple[int, int]]:
        """(opcode, internal port) of the map requests seen, deletions or not."""
        found = []
        for data in self.requests:
            if len(data) == 12 and data[0] == 0 and data[1] in (1, 2):
                _, opcode, _, internal, _, lifetime = struct.unpack("!BBHHHI", data)
                if (lifetime == 0) == lifetime_zero:
                    found.append((opcode, internal))
        return found


async def responder(silent: bool = False) -> tuple[asyncio.DatagramTransport, NatPmpResponder]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: NatPmpResponder(silent=silent), local_addr=(LOOPBACK, 0)
    )
    return transport, protocol


async def test_falls_back_to_natpmp_renews_before_expiry_and_deletes_at_stop() -> None:
    transport, router = await responder()
    port = transport.get_extra_info("sockname")[1]
    mapper = PortMapper(
        [("tcp", 7001), ("udp", 7002)], gateway=LOOPBACK, server_port=port, min_renew=0.2
    )
    try:
        async with asyncio.timeout(DEADLINE):
            result = await mapper.start()
            assert result.protocol == "natpmp", result.error
            assert result.external_ip == "11.77.0.1"
            assert [(m.protocol, m.external_port, m.lifetime) for m in result.mappings] == [
                ("tcp", 8001, LEASE),
                ("udp", 8002, LEASE),
            ]
            await router.renewed.wait()
            await mapper.close()
        assert sorted(router.maps(lifetime_zero=True)) == [(1, 7002), (2, 7001)]
        assert mapper.result.mappings == []
    finally:
        await mapper.close()
        transport.close()


async def test_a_silent_gateway_costs_seconds_not_the_start() -> None:
    transport, router = await responder(silent=True)
    port = transport.get_extra_info("sockname")[1]
    mapper = PortMapper(
        [("tcp", 7001)], gateway=LOOPBACK, server_port=port, protocols=["pcp", "natpmp"]
    )
    started = time.monotonic()
    try:
        async with asyncio.timeout(DEADLINE):
            result = await mapper.start()
        assert not result.mapped and result.error is not None
        assert "pcp: no answer" in result.error and "natpmp: no answer" in result.error
        assert len(router.requests) == 8  # 4 tries per protocol, then it gives up
        assert time.monotonic() - started < 15
    finally:
        await mapper.close()
        transport.close()
