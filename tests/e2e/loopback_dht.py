"""A small Mainline DHT of real UDP drivers on 127.0.0.1, bootstrapped and ready to query."""

from __future__ import annotations

import asyncio
import random

from servent.net.dht_driver import DhtDriver
from servent.proto.dht import DhtConfig

#: Loopback puts every node on one IP: turn off the per-IP defences.
LOOPBACK = DhtConfig(restrict_ips=False, rate_limit_per_ip=0.0, query_timeout=1.0)


async def start_loopback_dht(count: int, seed: int, deadline: float = 30.0) -> list[DhtDriver]:
    """``count`` started drivers (seeded ``seed``, ``seed + 1``...) that all know each other;
    the caller closes them."""
    drivers = [
        DhtDriver(host="127.0.0.1", config=LOOPBACK, rng=random.Random(seed + i))
        for i in range(count)
    ]
    for driver in drivers:
        await driver.start()
    async with asyncio.timeout(deadline):
        for driver in drivers[1:]:
            await driver.bootstrap([drivers[0].address])
        for driver in drivers:
            await driver.bootstrap([])
    return drivers
