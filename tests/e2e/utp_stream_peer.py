"""A uTP stream endpoint run as a child process (inside a test's network namespace).

``receive HOST`` listens on ``HOST:0``, prints ``PORT <n>``, and after the
stream's end prints ``DONE <bytes> <sha256>``. ``send HOST PORT SIZE SEED``
streams ``SIZE`` pseudo-random bytes, closes, and prints ``SENT <seconds>`` once the
receiver acknowledged all of it and both FINs (exit status 1 if the connection failed),
then ``STATS <json>``: the connection's statistics (path MTU found among them).
``relay HOST TARGET_HOST TARGET_PORT DELAY LOSS`` listens on ``HOST:0``,
prints ``PORT <n>`` and forwards datagrams both ways between the first client
and the target, each delayed by ``DELAY`` seconds and dropped with
probability ``LOSS``: netem's ``delay``/``loss`` in user space, for kernels
built without ``sch_netem``. Every mode exits by itself within ``--deadline``
seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict
from typing import Any

from servent.net.utp_socket import UtpSocket
from servent.net.utp_transport import UtpTransport

#: After the stream's end, how long the receiver waits for its own FIN's acknowledgement.
FINISH_WAIT = 5.0


class _Sink(asyncio.Protocol):
    def __init__(self, done: asyncio.Future[tuple[int, str]]) -> None:
        self.digest = hashlib.sha256()
        self.size = 0
        self.done = done
        self.transport: UtpTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, UtpTransport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.digest.update(data)
        self.size += len(data)

    def eof_received(self) -> bool:
        if not self.done.done():
            self.done.set_result((self.size, self.digest.hexdigest()))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():  # reset or timed out before the stream's end: fail, not hang
            self.done.set_exception(exc or ConnectionError("closed before the stream's end"))


class _Source(asyncio.Protocol):
    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.lost = asyncio.Event()

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()


async def receive(host: str) -> None:
    done: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
    sinks: list[_Sink] = []

    def accept() -> _Sink:
        sinks.append(_Sink(done))
        return sinks[-1]

    utp = UtpSocket(accept=accept)
    utp.bind(host)
    print(f"PORT {utp.port}", flush=True)
    size, digest = await done
    print(f"DONE {size} {digest}", flush=True)
    transport = next(iter(sinks)).transport
    assert transport is not None
    # Our FIN goes out after the peer's; stay until it is acknowledged (bounded: the
    # sender may be gone before its last ACK is repeated).
    with contextlib.suppress(ConnectionError, TimeoutError):
        await asyncio.wait_for(asyncio.shield(transport.finished), FINISH_WAIT)
    utp.close()


async def send(host: str, port: int, size: int, seed: int) -> None:
    data = random.Random(seed).randbytes(size)
    utp = UtpSocket()
    utp.bind("0.0.0.0")
    started = time.monotonic()
    transport, protocol = await utp.create_connection(_Source, host, port)
    assert isinstance(protocol, _Source)
    for offset in range(0, size, 1 << 16):
        await protocol.writable.wait()
        transport.write(data[offset : offset + (1 << 16)])
    transport.close()
    # connection_lost comes once our bytes are queued, as with TCP; the stream is only
    # done when the receiver acknowledged all of it and the FIN (an error raises here).
    await transport.finished
    await protocol.lost.wait()
    print(f"SENT {time.monotonic() - started:.3f}", flush=True)
    print(f"STATS {json.dumps(asdict(transport.conn.statistics()))}", flush=True)
    utp.close()


class _RelayEnd(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.on_datagram(data, addr)


async def relay(host: str, target: tuple[str, int], delay: float, loss: float) -> None:
    loop = asyncio.get_running_loop()
    rng = random.Random(5)
    client: list[tuple[str, int]] = []
    ends: dict[str, asyncio.DatagramTransport] = {}

    def forward(end: str, data: bytes, addr: tuple[str, int]) -> None:
        if rng.random() >= loss:
            loop.call_later(delay, ends[end].sendto, data, addr)

    def from_client(data: bytes, addr: tuple[str, int]) -> None:
        if not client:
            client.append(addr)
        forward("server", data, target)

    def from_server(data: bytes, addr: tuple[str, int]) -> None:
        if client:
            forward("client", data, client[0])

    ends["client"], _ = await loop.create_datagram_endpoint(
        lambda: _RelayEnd(from_client), local_addr=(host, 0)
    )
    ends["server"], _ = await loop.create_datagram_endpoint(
        lambda: _RelayEnd(from_server), local_addr=(host, 0)
    )
    print(f"PORT {ends['client'].get_extra_info('sockname')[1]}", flush=True)
    await asyncio.Event().wait()  # until the deadline (or the test kills it)


def main(argv: list[str]) -> None:
    deadline = float(argv[argv.index("--deadline") + 1]) if "--deadline" in argv else 120.0
    args = [a for a in argv if a != "--deadline" and a != str(deadline)]
    job: Coroutine[Any, Any, None]
    if args[0] == "receive":
        job = receive(args[1])
    elif args[0] == "relay":
        job = relay(args[1], (args[2], int(args[3])), float(args[4]), float(args[5]))
    else:
        job = send(args[1], int(args[2]), int(args[3]), int(args[4]))
    if args[0] == "relay":  # runs until its deadline: that is its normal end
        with contextlib.suppress(TimeoutError):
            asyncio.run(asyncio.wait_for(job, deadline))
        return
    asyncio.run(asyncio.wait_for(job, deadline))


if __name__ == "__main__":
    main(sys.argv[1:])
