"""The tracker client against servent's own tracker and hostile servers on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from servent.codec.tracker import AnnounceRequest
from servent.errors import TrackerError
from servent.net.tracker_client import TrackerClient, UdpRetryPolicy
from servent.net.tracker_server import TrackerServer

IH = b"c" * 20


def req(n: int, port: int, event: str = "started") -> AnnounceRequest:
    return AnnounceRequest(info_hash=IH, peer_id=bytes([n]) * 20, port=port, left=1, event=event)


@pytest.mark.parametrize("scheme", ["http", "udp"])
async def test_client_announces_and_scrapes_our_tracker(scheme: str) -> None:
    async with TrackerServer("127.0.0.1", 0) as server, TrackerClient() as client:
        url = f"{scheme}://127.0.0.1:{server.port}/announce"
        assert (await client.announce(url, req(1, 7001))).peers == ()
        second = await client.announce(url, req(2, 7002))
        assert second.peers == (("127.0.0.1", 7001),) and second.interval == 1800
        counts = await client.scrape(url, [IH])
        assert counts[IH].incomplete == 2
        await client.announce(url, req(2, 7002, event="stopped"))
        assert server.state.peer_count(IH) == 1


async def test_udp_connection_id_is_reused_within_a_minute() -> None:
    async with TrackerServer("127.0.0.1", 0) as server, TrackerClient() as client:
        url = f"udp://127.0.0.1:{server.port}"
        seen: list[bytes] = []
        original = server.handle_datagram

        def spy(data: bytes, source: tuple[str, int]) -> bytes | None:
            seen.append(data)
            return original(data, source)

        server.handle_datagram = spy  # type: ignore[method-assign]
        await client.announce(url, req(1, 7001))
        await client.announce(url, req(1, 7001, event=""))
        assert len(seen) == 3  # one connect, two announces


@pytest.fixture
async def silent_udp_port() -> AsyncIterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


async def test_udp_tracker_that_never_answers_fails_after_bounded_retries(
    silent_udp_port: int,
) -> None:
    policy = UdpRetryPolicy(base_timeout=0.05, max_retries=2)
    async with TrackerClient(udp_retry=policy) as client:
        with pytest.raises(TrackerError, match="3 tries"):
            await asyncio.wait_for(
                client.announce(f"udp://127.0.0.1:{silent_udp_port}", req(1, 1)), 5
            )


async def hostile_http(body: bytes) -> tuple[web.AppRunner, int]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body)

    app = web.Application()
    app.router.add_get("/announce", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await web.SockSite(runner, sock).start()
    return runner, port


@pytest.mark.parametrize(
    ("body", "match"),
    [(b"<html>garbage</html>", "not bencoded"), (b"d" + b"1" * (3 << 20), "exceeds")],
)
async def test_http_tracker_with_garbage_or_huge_body_raises_tracker_error(
    body: bytes, match: str
) -> None:
    runner, port = await hostile_http(body)
    try:
        async with TrackerClient() as client:
            with pytest.raises(TrackerError, match=match):
                await client.announce(f"http://127.0.0.1:{port}/announce", req(1, 1))
    finally:
        await runner.cleanup()


async def test_unreachable_http_tracker_raises_tracker_error(silent_udp_port: int) -> None:
    async with TrackerClient(http_timeout=5) as client:
        with pytest.raises(TrackerError, match="unreachable"):
            await client.announce(f"http://127.0.0.1:{silent_udp_port}/announce", req(1, 1))
