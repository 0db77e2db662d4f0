"""A driver's own lookups count what other nodes stored at it (3-node loopback DHT)."""

from __future__ import annotations

import asyncio

from loopback_dht import start_loopback_dht

from servent.codec.compact import Address
from servent.proto.dht import AnnounceDone, ItemFound, PutDone


async def test_get_peers_finds_a_peer_stored_only_at_the_asker() -> None:
    asker, announcer, gone = await start_loopback_dht(3, seed=400, deadline=20)
    try:
        info_hash = bytes(range(3, 23))
        async with asyncio.timeout(20):
            done = await announcer.announce(info_hash, 7100)
            assert isinstance(done, AnnounceDone) and done.stored == 2  # the asker and `gone`
            await gone.close()  # now the asker alone keeps the announce
            batches: list[tuple[Address, ...]] = []
            found = await asker.get_peers(info_hash, on_peers=batches.append)
            streamed = [batch async for batch in asker.iter_peers(info_hash)]
        assert found.peers == (("127.0.0.1", 7100),)
        assert batches == [(("127.0.0.1", 7100),)]
        assert streamed == [(("127.0.0.1", 7100),)]
    finally:
        for driver in (asker, announcer, gone):
            await driver.close()


async def test_get_item_finds_a_mutable_item_stored_only_at_the_asker() -> None:
    asker, writer, gone = await start_loopback_dht(3, seed=410, deadline=20)
    try:
        async with asyncio.timeout(20):
            put = await writer.put_mutable(bytes(range(32)), b"v6", salt=b"share")
            assert isinstance(put, PutDone) and put.stored == 2
            await gone.close()
            got = await asker.get_item(put.target, salt=b"share")
        assert isinstance(got, ItemFound) and got.value == b"v6" and got.seq == put.seq
    finally:
        for driver in (asker, writer, gone):
            await driver.close()
