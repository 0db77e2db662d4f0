"""BEP 42 on real loopback sockets: the driver learns its external IP and takes a new ID.

The responders are minimal KRPC nodes on 127.0.0.1 that report, in the ``ip``
key of every answer, the address a NAT would have shown them: a public-looking
IP given only as data (nothing is sent there).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import cast

from servent.codec.bencode import BValue, decode, encode
from servent.codec.compact import Address, encode_peer
from servent.net.dht_driver import DhtDriver, load_state
from servent.proto.dht import DhtConfig, ExternalAddressChanged, NodeIdChanged
from servent.proto.dht.node_id import is_secure_id

LOOPBACK = DhtConfig(restrict_ips=False, rate_limit_per_ip=0.0, query_timeout=1.0)
SEEN_AS = "8.8.4.4"


class NattedResponder(asyncio.DatagramProtocol):
    """Answers every query as node ``node_id`` and says it saw the querier at SEEN_AS."""

    def __init__(self, node_id: bytes) -> None:
        self.node_id = node_id
        self.querier_ids: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        message = decode(data)
        assert isinstance(message, dict) and message.get(b"y") == b"q"
        args = message[b"a"]
        assert isinstance(args, dict)
        querier = args[b"id"]
        assert isinstance(querier, bytes)
        self.querier_ids.append(querier)
        reply: dict[bytes, BValue] = {
            b"t": message[b"t"],
            b"y": b"r",
            b"r": {b"id": self.node_id, b"nodes": b""},
            b"ip": encode_peer((SEEN_AS, addr[1])),
        }
        assert self.transport is not None
        self.transport.sendto(encode(reply), addr)


async def test_driver_takes_a_bep42_id_for_the_ip_its_peers_report(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    responders: list[NattedResponder] = []
    transports: list[asyncio.DatagramTransport] = []
    addresses: list[Address] = []
    for i in range(3):
        transport, protocol = await loop.create_datagram_endpoint(
            lambda i=i: NattedResponder(bytes([0x30 + i]) * 20),  # type: ignore[misc]
            local_addr=("127.0.0.1", 0),
        )
        transports.append(transport)
        responders.append(protocol)
        name = transport.get_extra_info("sockname")
        addresses.append((name[0], name[1]))
    state = tmp_path / "dht.json"
    driver = DhtDriver(host="127.0.0.1", config=LOOPBACK, state_path=state)
    try:
        await driver.start()
        first_id = driver.node_id
        async with asyncio.timeout(20):
            await driver.bootstrap(addresses)
            seen: list[object] = []
            while not any(isinstance(e, NodeIdChanged) for e in seen):
                seen.append(await driver.next_event())
            # The next lookup reaches the responders under the new ID.
            await driver.find_node(b"\x42" * 20)
        assert ExternalAddressChanged(SEEN_AS) in seen
        assert driver.external_ip == SEEN_AS
        assert driver.node_id != first_id and is_secure_id(driver.node_id, SEEN_AS)
        saved_id, _ = load_state(state)
        assert saved_id == driver.node_id  # saved at once: a restart keeps the BEP 42 ID
        for responder in responders:
            assert responder.querier_ids[0] == first_id
            assert responder.querier_ids[-1] == driver.node_id
    finally:
        await driver.close()
        for transport in transports:
            transport.close()


async def test_dual_stack_driver_finds_an_ipv6_only_node_through_an_ipv4_contact() -> None:
    # BEP 32: a dual-stack node asks for both families and follows nodes6 answers.
    bridge = DhtDriver(host="127.0.0.1", host6="::1", config=LOOPBACK)
    v6_only = DhtDriver(host=None, host6="::1", config=LOOPBACK)  # type: ignore[arg-type]
    seeker = DhtDriver(host="127.0.0.1", host6="::1", config=LOOPBACK)
    drivers = [bridge, v6_only, seeker]
    try:
        for driver in drivers:
            await driver.start()
        assert bridge.node.dual_stack and seeker.node.dual_stack and not v6_only.node.dual_stack
        bridge6 = bridge.address6
        assert bridge6 is not None
        async with asyncio.timeout(20):
            await v6_only.bootstrap([bridge6])
            v6_address = v6_only.address6
            assert v6_address is not None
            await bridge.ping(v6_address)  # an answer puts it in the bridge's IPv6 table
            assert bridge.node.routing_table.find(v6_only.node_id, "::1") is not None
            await seeker.bootstrap([bridge.address])  # IPv4 only
            found = await seeker.find_node(v6_only.node_id)
        assert v6_address in {addr for _, addr in found.nodes}
        assert seeker.node.routing_table.find(v6_only.node_id, "::1") is not None
    finally:
        for driver in drivers:
            await driver.close()
