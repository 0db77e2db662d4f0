"""Address records in a small DHT of real UDP drivers on loopback (BEP 44, salt servent-node)."""

from __future__ import annotations

import asyncio
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from loopback_dht import start_loopback_dht

from polling import wait_for
from servent.codec.compact import Address
from servent.codec.node_record import RECORD_SALT
from servent.net.node_record import AddressPublisher, find_node_record

DEADLINE = 30.0
FOUND_WITHIN = 20.0
"""From the moment the DHT can store until another node finds the record (60-90 s before)."""


def _public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


async def test_a_record_is_found_by_id_and_follows_an_address_change() -> None:
    drivers = await start_loopback_dht(6, seed=1400)
    identity = Ed25519PrivateKey.generate()
    addresses: list[Address] = [("127.0.0.1", 40001)]
    publisher = AddressPublisher(
        drivers[0], identity, lambda: addresses, name="Ann", check_interval=0.2
    )
    task = asyncio.get_running_loop().create_task(publisher.run())
    try:
        await wait_for(lambda: publisher.publications >= 1, "first publication")
        async with asyncio.timeout(DEADLINE):
            found = await find_node_record(drivers[4], _public(identity))
        assert found is not None and found.addresses == (("127.0.0.1", 40001),)
        assert found.name == "Ann" and abs(found.time - time.time()) < 60

        addresses[:] = [("127.0.0.2", 40002), ("::1", 40002)]  # the node moved
        publisher.addresses_changed()
        await wait_for(lambda: publisher.publications >= 2, "publication after the move")
        async with asyncio.timeout(DEADLINE):
            moved = await find_node_record(drivers[5], _public(identity))
        assert moved is not None and moved.addresses == (("127.0.0.2", 40002), ("::1", 40002))
        assert publisher.publications == 2  # nothing changed since: no extra puts
    finally:
        task.cancel()
        for driver in drivers:
            await driver.close()


async def test_an_address_change_nobody_announces_is_published_at_the_next_check() -> None:
    drivers = await start_loopback_dht(5, seed=1450)
    identity = Ed25519PrivateKey.generate()
    addresses: list[Address] = [("127.0.0.1", 40011)]
    publisher = AddressPublisher(drivers[0], identity, lambda: addresses, check_interval=0.3)
    task = asyncio.get_running_loop().create_task(publisher.run())
    try:
        await wait_for(lambda: publisher.publications >= 1, "first publication")
        addresses[:] = [("127.0.0.3", 40011)]  # e.g. the DHT saw a new external IP
        await wait_for(lambda: publisher.publications >= 2, "the move found by the check")
        async with asyncio.timeout(DEADLINE):
            moved = await find_node_record(drivers[3], _public(identity))
        assert moved is not None and moved.addresses == (("127.0.0.3", 40011),)
    finally:
        task.cancel()
        for driver in drivers:
            await driver.close()


async def test_unknown_ids_and_garbage_records_give_none() -> None:
    drivers = await start_loopback_dht(5, seed=1500)
    try:
        nobody = _public(Ed25519PrivateKey.generate())
        vandal = Ed25519PrivateKey.generate()
        async with asyncio.timeout(DEADLINE):
            assert await find_node_record(drivers[2], nobody) is None
            put = await drivers[1].put_mutable(vandal, b"not a record", salt=RECORD_SALT)
            assert put.stored > 0
            assert await find_node_record(drivers[3], _public(vandal)) is None
    finally:
        for driver in drivers:
            await driver.close()


async def test_a_node_is_found_by_its_id_and_reached_over_a_channel(tmp_path: object) -> None:
    """Two Nodes on a loopback DHT: B looks A up by ID alone, then dials it."""
    from pathlib import Path

    from servent.net.node_channel import NodeStream
    from servent.node.config import load_config
    from servent.node.node import Node

    assert isinstance(tmp_path, Path)
    drivers = await start_loopback_dht(4, seed=1600)
    bootstrap = [f"127.0.0.1:{drivers[0].address[1]}"]

    def config(name: str) -> dict[str, object]:
        return {
            "data_dir": str(tmp_path / name),
            "lsd_enabled": False,
            "listen_host": "127.0.0.1",
            "listen_port": 0,
            "dht_bootstrap": bootstrap,
            "dht_restrict_ips": False,
            "name": name.upper(),
        }

    async def echo(stream: NodeStream) -> None:
        while (message := await stream.receive()) is not None:
            stream.send(message)

    try:
        async with (
            Node(load_config(None, config("a"))) as node_a,
            Node(load_config(None, config("b"))) as node_b,
        ):
            node_a.channels.protocols.register("servent/echo/1", echo)
            publisher = node_a._publisher
            assert publisher is not None
            await wait_for(lambda: publisher.publications >= 1, "A published its record")
            await wait_for(lambda: node_b.status().dht_nodes >= 3, "B joined the DHT")
            async with asyncio.timeout(DEADLINE):
                record = await node_b.locate(node_a.identity.node_id)
            assert record is not None and record.name == "A"
            address = node_a.status().listen_address
            assert address is not None and address in record.addresses
            async with asyncio.timeout(DEADLINE):
                channel = await node_b.connect(node_a.identity.node_id)  # DHT lookup, dial
                assert channel.peer_key == node_a.identity.public_key
                stream = channel.open_stream("servent/echo/1")
                stream.send(b"found you")
                assert await stream.receive() == b"found you"
    finally:
        for driver in drivers:
            await driver.close()


async def test_a_node_whose_first_puts_stored_nowhere_is_found_within_seconds(
    tmp_path: object,
) -> None:
    """No DHT-ready signal helps here: the node has no bootstrap entry, so its first
    puts store nowhere; the DHT finds it later (others contact it).  The retry back-off
    publishes within seconds (it waited the 60 s check interval before)."""
    from pathlib import Path

    from servent.node.config import load_config
    from servent.node.node import Node

    assert isinstance(tmp_path, Path)
    drivers = await start_loopback_dht(6, seed=1700)
    config = {
        "data_dir": str(tmp_path / "a"), "lsd_enabled": False, "listen_host": "127.0.0.1",
        "listen_port": 0, "dht_bootstrap": [], "dht_restrict_ips": False,
    }  # fmt: skip
    try:
        async with Node(load_config(None, config)) as node:
            publisher = node._publisher
            assert publisher is not None and node.dht is not None
            await wait_for(lambda: publisher.attempts >= 1, "a first put, stored nowhere")
            assert publisher.publications == 0
            joined = time.monotonic()
            async with asyncio.timeout(DEADLINE):  # the network meets the node
                for driver in drivers:
                    await driver.bootstrap([node.dht.address])
            public_key = node.identity.public_key
            found = None
            while found is None:  # each lookup is bounded; the loop by FOUND_WITHIN
                assert time.monotonic() - joined < FOUND_WITHIN, "not found by its ID in time"
                async with asyncio.timeout(DEADLINE):
                    found = await find_node_record(drivers[5], public_key)
                await asyncio.sleep(0.1)  # between lookups, not a synchronisation
            print(f"found by ID {time.monotonic() - joined:.1f} s after the DHT met the node")
            assert node.status().listen_address in found.addresses
            assert publisher.publications == 1
            # Back-off, not hammering: 2 s doubling gives a handful of tries, not dozens.
            assert publisher.attempts <= 2 + (time.monotonic() - joined) / 1.5
    finally:
        for driver in drivers:
            await driver.close()
