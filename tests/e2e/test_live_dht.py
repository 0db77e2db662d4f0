"""A viewer finds a broadcast through the DHT alone (a live key without an address hint).

Six real DHT drivers on loopback UDP; the broadcaster announces its port under
the broadcast's topic, SHA-1("servent-live:" || key); a viewer given only
``live:KEY`` looks the topic up, dials what it finds and gets the pieces.
"""

from __future__ import annotations

import asyncio
import time

from loopback_dht import start_loopback_dht

from servent.testing.live_nodes import LiveNode

DEADLINE = 30.0


async def test_a_key_without_address_is_found_through_the_dht() -> None:
    drivers = await start_loopback_dht(6, seed=1900)
    try:
        async with LiveNode(dht=drivers[1]) as broadcaster, LiveNode(dht=drivers[4]) as viewer:
            session = broadcaster.live.broadcast("dht")
            key = broadcaster.live.live_key(session.topic).split("@")[0]
            assert "@" not in key
            watched = viewer.live.watch(key)
            deadline = time.monotonic() + DEADLINE
            index = 0
            while not watched.pieces:  # a piece a tick until the viewer has found the swarm
                assert time.monotonic() < deadline, "the viewer never found the broadcaster"
                broadcaster.live.publish(session.topic, b"frame %d" % index)
                index += 1
                await asyncio.sleep(0.2)  # the broadcast's pace
            for piece in watched.pieces.values():
                assert piece.data == b"frame %d" % piece.index
            assert broadcaster.address in watched.known
    finally:
        for driver in drivers:
            await driver.close()
