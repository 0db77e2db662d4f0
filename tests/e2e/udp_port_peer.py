"""A shared UDP port (``UdpPort``, DF set) in a child process, inside a test's namespace.

``receive HOST`` binds ``HOST:0``, prints ``PORT <n>``, then ``GOT <bytes> <sha256>``
for the first non-uTP datagram (what the DHT would get). ``send HOST PORT SIZE``
sends one bencoded-looking datagram of ``SIZE`` bytes through ``UdpPort.sendto``
and prints ``SENT <True|False> <dont_fragment>``. Each mode ends within ``DEADLINE``.
"""

from __future__ import annotations

import asyncio
import hashlib
import sys

from servent.net.udp_demux import UdpPort

DEADLINE = 30.0


def datagram(size: int) -> bytes:
    """``d1:x<n>:...e``: starts like a DHT message, so the port routes it away from uTP."""
    body = size - 6 - len(str(size))
    return b"d1:x" + str(body).encode() + b":" + bytes(body) + b"e"


async def receive(host: str) -> None:
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
    port = UdpPort.bind(host, 0)

    def handler(batch: list[tuple[bytes, tuple[str, int]]], now: float) -> None:
        if not got.done():
            got.set_result(batch[0][0])

    port.other_handler = handler
    port.start()
    print(f"PORT {port.address[1]}", flush=True)
    data = await got
    print(f"GOT {len(data)} {hashlib.sha256(data).hexdigest()}", flush=True)
    port.close()


async def send(host: str, target: int, size: int) -> None:
    port = UdpPort.bind("0.0.0.0", 0)
    print(f"SENT {port.sendto(datagram(size), (host, target))} {port.dont_fragment}", flush=True)
    port.close()


def main(argv: list[str]) -> None:
    job = receive(argv[1]) if argv[0] == "receive" else send(argv[1], int(argv[2]), int(argv[3]))
    asyncio.run(asyncio.wait_for(job, DEADLINE))


if __name__ == "__main__":
    main(sys.argv[1:])
