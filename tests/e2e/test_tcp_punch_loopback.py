"""The TCP punch's sockets on loopback: they share the listening port, nothing else does.

``SO_REUSEPORT`` lets our punching socket bind the port the listener holds;
it must not let a second listener (another node started on the same port)
share that port silently, which would hand it half our incoming peers.
"""

from __future__ import annotations

import asyncio
import errno

import pytest

from servent.net.limits import GlobalLimits
from servent.net.listener import PeerListener
from servent.net.tcp_punch import TcpPuncher
from servent.proto.tcp_punch import PunchSchedule

pytestmark = pytest.mark.e2e

HOST = "127.0.0.1"


def listener(port: int = 0, *, share_port: bool = True) -> PeerListener:
    limits = GlobalLimits(max_connections=8, download_rate=None, upload_rate=None, now=0.0)
    return PeerListener(
        peer_id=b"-SV0000-" + bytes(12), lookup=lambda _hash: None, limits=limits,
        host=HOST, port=port, share_port=share_port,
    )  # fmt: skip


async def test_a_punch_dials_from_the_listening_port() -> None:
    ours, theirs = listener(), listener()
    await ours.start()
    await theirs.start()
    try:
        puncher = TcpPuncher(HOST, ours.port, ours.incoming_protocol)
        async with asyncio.timeout(10):
            sock = await puncher.open((HOST, theirs.port))
        try:
            assert sock.getsockname() == (HOST, ours.port)
            assert sock.getpeername() == (HOST, theirs.port)
        finally:
            sock.close()
        assert puncher.outcomes == {"connected": 1}
    finally:
        await ours.close()
        await theirs.close()


async def test_a_second_listener_on_a_shared_port_still_fails() -> None:
    first = listener()
    await first.start()
    try:
        second = listener(first.port)
        with pytest.raises(OSError) as refused:
            await second.start()
        assert refused.value.errno == errno.EADDRINUSE
        await second.close()
    finally:
        await first.close()


async def test_refused_attempts_are_retried_then_given_up() -> None:
    """Nobody listens on the far port: every SYN is refused; the punch retries on its
    schedule and ends with the refusal, within its window."""
    ours, closed = listener(), listener()
    await ours.start()
    await closed.start()
    gone = closed.port
    await closed.close()  # the port is free again: connecting to it is refused
    try:
        schedule = PunchSchedule(window=5.0, retry_gap=0.05, attempts=3)
        puncher = TcpPuncher(HOST, ours.port, ours.incoming_protocol, schedule)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(ConnectionRefusedError):
            await puncher.open((HOST, gone))
        assert loop.time() - started < schedule.window
        assert puncher.outcomes == {"refused": 1}
    finally:
        await ours.close()
