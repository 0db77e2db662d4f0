"""Node channel costs: handshakes per second, and bytes per second through the core and TCP.

``python -m bench.node_channel [--seconds 1.0] [--megabytes 64]``

* handshakes: a complete Noise XX exchange between two sans-IO connections in
  memory (three X25519 key pairs' worth of DH per side, one Ed25519 verify).
* core: 64 KiB messages encrypted by one sans-IO connection and decrypted by
  the other (ChaCha20-Poly1305 plus framing), no sockets.
* TCP: the same messages from one ChannelHost to another over loopback,
  through the peer listener's first-bytes sniffer, timed until the last one
  is read by the receiving protocol handler.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.net.channel_host import ChannelHost
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.node_channel import NodeStream
from servent.proto.channel import ChannelConnection, LocalKeys, Phase

MESSAGE = 64 * 1024


def _keys() -> LocalKeys:
    return LocalKeys.create(Ed25519PrivateKey.generate())


def _pair(client_keys: LocalKeys, server_keys: LocalKeys) -> tuple[ChannelConnection, ...]:
    client = ChannelConnection(client_keys, initiator=True, now=0.0)
    server = ChannelConnection(server_keys, initiator=False, now=0.0, protocols={"b/1"})
    server.receive_data(client.data_to_send(), 0.0)
    client.receive_data(server.data_to_send(), 0.0)
    server.receive_data(client.data_to_send(), 0.0)
    assert client.phase is server.phase is Phase.OPEN
    return client, server


def handshakes(seconds: float) -> float:
    client_keys, server_keys = _keys(), _keys()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        _pair(client_keys, server_keys)
        count += 1
    return count / (time.perf_counter() - start)


def core_throughput(megabytes: int) -> float:
    client, server = _pair(_keys(), _keys())
    stream = client.open_stream("b/1")
    payload = bytes(MESSAGE)
    count = megabytes * 1024 * 1024 // MESSAGE
    start = time.perf_counter()
    for _ in range(count):
        client.send_message(stream, payload)
        server.receive_data(client.data_to_send(), 0.0)
        while server.next_event() is not None:
            pass
    return megabytes / (time.perf_counter() - start)


async def tcp_throughput(megabytes: int) -> float:
    count = megabytes * 1024 * 1024 // MESSAGE
    done = asyncio.Event()

    async def sink(stream: NodeStream) -> None:
        received = 0
        while await stream.receive() is not None:
            received += 1
            if received == count:
                done.set()

    sender, receiver = ChannelHost(_keys()), ChannelHost(_keys())
    receiver.protocols.register("bench/sink/1", sink)
    async with SwarmEngine(EngineConfig(listen_host="127.0.0.1")) as engine:
        assert engine.listener is not None
        engine.listener.channel_acceptor = receiver
        channel = await sender.dial("127.0.0.1", engine.port)
        stream = channel.open_stream("bench/sink/1")
        payload = bytes(MESSAGE)
        start = time.perf_counter()
        for _ in range(count):
            stream.send(payload)
            await stream.drain()
        async with asyncio.timeout(120):
            await done.wait()
        elapsed = time.perf_counter() - start
        await sender.close()
        await receiver.close()
    return megabytes / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.node_channel", description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--megabytes", type=int, default=64)
    args = parser.parse_args(argv)
    print(f"handshakes (Noise XX, in memory): {handshakes(args.seconds):8.0f} /s")
    print(f"core, 64 KiB messages:            {core_throughput(args.megabytes):8.0f} MiB/s")
    tcp = asyncio.run(tcp_throughput(args.megabytes))
    print(f"loopback TCP, 64 KiB messages:    {tcp:8.0f} MiB/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
