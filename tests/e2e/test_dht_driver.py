"""The asyncio UDP driver on real loopback sockets: lookups, persistence, IPv6, close."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from pathlib import Path

from loopback_dht import LOOPBACK, start_loopback_dht

from servent.codec.compact import Address
from servent.net.dht_driver import DhtDriver, load_state
from servent.proto.dht import ItemFound, NodesFound, PeersFound, PingDone, PutDone


async def test_drivers_on_loopback_announce_and_find_peers() -> None:
    drivers = await start_loopback_dht(6, seed=100, deadline=20)
    try:
        info_hash = bytes(range(20))
        async with asyncio.timeout(20):
            done = await drivers[1].announce(info_hash, 7777)
            found = await drivers[4].get_peers(info_hash)
            pinged = await drivers[5].ping(drivers[0].address)
        assert isinstance(found, PeersFound)
        assert ("127.0.0.1", 7777) in found.peers, (done, found)
        assert isinstance(pinged, PingDone) and pinged.node_id == drivers[0].node_id
    finally:
        for driver in drivers:
            await driver.close()


async def test_immutable_item_put_by_one_driver_is_read_by_another() -> None:
    drivers = await start_loopback_dht(5, seed=200, deadline=20)
    try:
        async with asyncio.timeout(20):
            put = await drivers[0].put_immutable(b"hello dht")
            assert isinstance(put, PutDone) and put.stored > 0
            got = await drivers[3].get_item(put.target)
        assert isinstance(got, ItemFound) and got.value == b"hello dht"
    finally:
        for driver in drivers:
            await driver.close()


async def test_routing_table_survives_restart_with_same_id(tmp_path: Path) -> None:
    drivers = await start_loopback_dht(5, seed=300, deadline=20)
    state = tmp_path / "dht" / "state.json"
    try:
        node = DhtDriver(host="127.0.0.1", config=LOOPBACK, state_path=state)
        await node.start()
        async with asyncio.timeout(20):
            await node.bootstrap([drivers[0].address])
        assert len(node.node.routing_table) >= 3
        node_id = node.node_id
        await node.close()
        saved_id, saved = load_state(state)
        assert saved_id == node_id and len(saved) >= 3
        assert not (tmp_path / "dht" / "state.json.tmp").exists()

        restarted = DhtDriver(host="127.0.0.1", config=LOOPBACK, state_path=state)
        await restarted.start()
        try:
            assert restarted.node_id == node_id
            assert len(restarted.node.routing_table) >= 3  # before any traffic
            async with asyncio.timeout(20):
                event = await restarted.bootstrap()  # only from the saved table
            assert isinstance(event, NodesFound) and len(event.nodes) >= 3
        finally:
            await restarted.close()
    finally:
        for driver in drivers:
            await driver.close()


async def test_corrupt_state_file_starts_afresh(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json")
    driver = DhtDriver(host="127.0.0.1", config=LOOPBACK, state_path=state)
    await driver.start()
    await driver.close()
    assert json.loads(state.read_text())["node_id"] == driver.node_id.hex()


async def test_ipv6_socket_answers_on_loopback() -> None:
    server = DhtDriver(host="127.0.0.1", host6="::1", config=LOOPBACK)
    client = DhtDriver(host="127.0.0.1", host6="::1", config=LOOPBACK)
    await server.start()
    await client.start()
    try:
        addr6 = server.address6
        assert addr6 is not None and addr6[0] == "::1"
        async with asyncio.timeout(10):
            pinged = await client.ping(addr6)
        assert isinstance(pinged, PingDone) and pinged.node_id == server.node_id
    finally:
        await client.close()
        await server.close()


async def test_close_releases_the_port_and_cancels_pending_operations() -> None:
    driver = DhtDriver(host="127.0.0.1", config=LOOPBACK)
    await driver.start()
    port = driver.address[1]
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.setblocking(False)
    silent.bind(("127.0.0.1", 0))
    loop = asyncio.get_running_loop()
    try:
        target: Address = silent.getsockname()
        async with asyncio.timeout(5), asyncio.TaskGroup() as group:
            pending = group.create_task(driver.ping(target))
            query = await loop.sock_recv(silent, 2048)  # the ping is on the wire
            assert b"ping" in query
            await driver.close()
        assert pending.cancelled()
    finally:
        silent.close()
    reuse = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        reuse.bind(("127.0.0.1", port))  # the port is free again
    finally:
        reuse.close()


async def test_burst_of_queries_from_one_socket_is_answered() -> None:
    """Batched reads: a burst larger than one read batch is answered in full."""
    from servent.codec.bencode import decode, encode

    driver = DhtDriver(host="127.0.0.1", config=LOOPBACK)
    await driver.start()
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.setblocking(False)
    client.bind(("127.0.0.1", 0))
    loop = asyncio.get_running_loop()
    try:
        burst = 500
        for index in range(burst):
            query = {b"t": index.to_bytes(2, "big"), b"y": b"q", b"q": b"ping",
                     b"a": {b"id": bytes(20)}}
            client.sendto(encode(query), driver.address)
        answered: set[bytes] = set()
        async with asyncio.timeout(10):
            while len(answered) < burst:
                reply = decode(await loop.sock_recv(client, 2048))
                assert isinstance(reply, dict)
                if reply[b"y"] == b"q":
                    continue  # the node pings a new querier back to learn about it
                assert reply[b"y"] == b"r"
                tid = reply[b"t"]
                assert isinstance(tid, bytes)
                answered.add(tid)
        assert driver.datagrams_received >= burst
    finally:
        client.close()
        await driver.close()


async def test_get_peers_hands_out_peers_before_the_lookup_ends() -> None:
    drivers = await start_loopback_dht(6, seed=300, deadline=20)
    try:
        info_hash = bytes(range(1, 21))
        async with asyncio.timeout(20):
            await drivers[1].announce(info_hash, 7001)
            await drivers[2].announce(info_hash, 7002)
            batches: list[tuple[Address, ...]] = []
            found = await drivers[4].get_peers(info_hash, on_peers=batches.append)
            streamed = [batch async for batch in drivers[5].iter_peers(info_hash)]
        expected = {("127.0.0.1", 7001), ("127.0.0.1", 7002)}
        assert set(found.peers) == expected
        heard = [peer for batch in batches for peer in batch]
        assert set(heard) == expected and len(heard) == len(expected)  # each once
        assert {peer for batch in streamed for peer in batch} == expected
    finally:
        for driver in drivers:
            await driver.close()


async def test_announce_hands_out_the_peers_it_meets_before_it_ends() -> None:
    """Torrent discovery announces rather than only looking up: its peers come early too."""
    drivers = await start_loopback_dht(6, seed=301, deadline=20)
    try:
        info_hash = bytes(range(2, 22))
        async with asyncio.timeout(20):
            await drivers[1].announce(info_hash, 7001)
            await drivers[2].announce(info_hash, 7002)
            announcing = True
            heard: list[tuple[Address, bool]] = []

            def early(batch: tuple[Address, ...]) -> None:
                heard.extend((peer, announcing) for peer in batch)

            done = await drivers[4].announce(info_hash, 7004, on_peers=early)
            announcing = False
        expected = {("127.0.0.1", 7001), ("127.0.0.1", 7002)}
        assert set(done.peers) == expected
        assert sorted(heard) == sorted((peer, True) for peer in expected)  # each once, early
    finally:
        for driver in drivers:
            await driver.close()


async def test_iter_peers_stops_when_the_driver_closes() -> None:
    driver = DhtDriver(host="127.0.0.1", config=LOOPBACK)
    await driver.start()
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.setblocking(False)
    silent.bind(("127.0.0.1", 0))
    loop = asyncio.get_running_loop()

    async def drain() -> list[tuple[Address, ...]]:
        return [batch async for batch in driver.iter_peers(bytes(range(20)))]

    try:
        driver.node.routing_table.import_nodes([(bytes(20), silent.getsockname())], 0.0)
        async with asyncio.timeout(5), asyncio.TaskGroup() as group:
            streaming = group.create_task(drain())
            query = await loop.sock_recv(silent, 2048)  # the lookup is on the wire
            assert b"get_peers" in query
            await driver.close()
            with contextlib.suppress(asyncio.CancelledError):
                await streaming
        assert streaming.cancelled()
    finally:
        silent.close()
        await driver.close()
