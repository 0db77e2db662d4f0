"""Bytes per second through a relay circuit and over a direct channel, on loopback.

Three nodes in one process: B holds a reservation on R; A sends ``--megabytes``
to B on a ``sink`` stream, first through R (relay uncapped), then over a
direct channel, and prints both rates.  Run: ``python -m bench.relay``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

from servent.codec.node_record import RelayRef
from servent.net.node_channel import NodeChannel, NodeStream
from servent.node.config import Config
from servent.node.node import Node

LOOPBACK = "127.0.0.1"
CHUNK = 60_000


async def sink(stream: NodeStream) -> None:
    total = 0
    while (data := await stream.receive()) is not None:
        total += len(data)
    stream.send(str(total).encode())


def node(folder: Path, **settings: object) -> Node:
    return Node(
        Config(data_dir=folder, listen_host=LOOPBACK, listen_port=0, dht_enabled=False,
               lsd_enabled=False, **settings)  # type: ignore[arg-type]
    )  # fmt: skip


async def send(channel: NodeChannel, size: int) -> float:
    stream = channel.open_stream("sink")
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(size // CHUNK):
        stream.send(bytes(CHUNK))
        await stream.drain()
    stream.close()
    answer = await stream.receive()
    assert answer == str(size // CHUNK * CHUNK).encode(), answer
    return size / (loop.time() - started)


async def main(megabytes: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix="servent-relay-bench-"))
    size = megabytes * 1_000_000
    async with AsyncExitStack() as stack:
        relay = await stack.enter_async_context(
            node(folder / "r", relay_enabled=True, relay_max_rate=0)
        )
        a = await stack.enter_async_context(node(folder / "a"))
        b = await stack.enter_async_context(node(folder / "b"))
        b.channels.protocols.register("sink", sink)
        relay_address = relay.peer_address()
        b_address = b.peer_address()
        assert relay_address is not None and b_address is not None
        assert await b.relaying.relay.reserve(await b.channels.dial(*relay_address))
        ref = RelayRef(relay.identity.public_key, relay_address)
        relayed = await send(await a.relaying.relay.dial_via(ref, b.identity.public_key), size)
        print(f"relayed  {relayed / 1e6:7.1f} MB/s ({megabytes} MB)")
        direct = await send(await a.channels.dial(*b_address), size)
        print(f"direct   {direct / 1e6:7.1f} MB/s ({megabytes} MB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=30)
    asyncio.run(main(parser.parse_args().megabytes))
