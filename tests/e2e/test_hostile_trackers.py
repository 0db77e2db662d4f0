"""Trackers that lie: garbage, oversized answers, huge peer lists, UDP noise.

Each is contained: one clear log line per failed announce, a bounded number
of peers taken, no crash, and the download still completes from an honest
peer given alongside.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from interop.reference_clients import wait_until, write_payload
from servent.codec import bencode
from servent.codec.compact import encode_peer
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.torrent_discovery import DiscoveryConfig
from servent.storage.torrent_creator import create_torrent

pytestmark = pytest.mark.e2e

LOOPBACK = "127.0.0.1"
DEADLINE = 30.0
QUICK = DiscoveryConfig(
    tracker_min_interval=0.5, tracker_retry=0.5, poll_interval=0.1, tracker_timeout=1.0
)
HUGE = 100_000


def huge_answer() -> bytes:
    # Closed ports on loopback: dialling them is refused at once.
    peers = b"".join(encode_peer((f"127.9.{i // 250 % 250}.{i % 250 + 1}", 1)) for i in range(HUGE))
    return bencode.encode({b"interval": 1, b"peers": peers})


ANSWERS = {
    "garbage": b"<html>this is not bencode</html>",
    "oversized": b"d8:intervali1e5:peers" + b"3000000:" + b"\0" * 3_000_000 + b"e",
    "not-a-dict": b"li1ei2ee",
    "bad-peers": b"d8:intervali1e5:peers7:1234567e",
    "huge": huge_answer(),
}


@contextlib.asynccontextmanager
async def hostile_http_tracker() -> AsyncIterator[tuple[int, dict[str, int]]]:
    hits: dict[str, int] = {}

    async def announce(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        hits[kind] = hits.get(kind, 0) + 1
        return web.Response(body=ANSWERS[kind], content_type="text/plain")

    app = web.Application()
    app.router.add_get("/{kind}/announce", announce)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield port, hits
    finally:
        await runner.cleanup()


class _Noise(asyncio.DatagramProtocol):
    """A UDP 'tracker' that answers every datagram with junk."""

    def __init__(self) -> None:
        self.received = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received += 1
        self.transport.sendto(b"\xff" * 7 + data[:9], addr)


async def test_hostile_trackers_are_contained_and_the_download_completes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = write_payload(tmp_path / "seed" / "file.bin", 300_000, seed=3)
    meta = create_torrent(tmp_path / "seed" / "file.bin", piece_length=32 * 1024)
    caplog.set_level(logging.INFO, logger="servent.net.torrent_discovery")
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK, 0))
    transport, noise = await loop.create_datagram_endpoint(_Noise, sock=sock)
    udp_url = f"udp://{LOOPBACK}:{sock.getsockname()[1]}/announce"
    try:
        async with hostile_http_tracker() as (port, hits):
            urls = [f"http://{LOOPBACK}:{port}/{kind}/announce" for kind in ANSWERS]
            async with (
                SwarmEngine(EngineConfig(listen_host=LOOPBACK, trackers=False)) as seeder,
                SwarmEngine(EngineConfig(listen_host=LOOPBACK, discovery=QUICK)) as leecher,
            ):
                await seeder.add_torrent(meta, tmp_path / "seed")
                session = await leecher.add_torrent(
                    meta, tmp_path / "down", peers=[(LOOPBACK, seeder.port)],
                    trackers=[udp_url, *urls],
                )  # fmt: skip
                async with asyncio.timeout(DEADLINE):
                    await session.wait_complete()
                    discovery = leecher.discoveries[session]
                await wait_until(
                    lambda: (
                        set(hits) == set(ANSWERS)
                        and noise.received > 0
                        and discovery.found.get("tracker", 0) > 0
                    ),
                    "every hostile tracker to be asked and the huge answer taken",
                    DEADLINE,
                )
                assert len(session.known) <= session.known.limit
                taken = discovery.found.get("tracker", 0)
    finally:
        transport.close()
    assert (tmp_path / "down" / "file.bin").read_bytes() == data
    messages = [r.getMessage() for r in caplog.records]
    failed = [m for m in messages if "announce failed" in m]
    for kind in ("garbage", "oversized", "not-a-dict", "bad-peers"):
        assert any(f"/{kind}/announce" in m for m in failed), (kind, failed)
    assert any(udp_url in m for m in failed), failed
    assert any("peers for 50 asked; keeping the first 200" in m for m in messages), messages
    assert 0 < taken <= 200 * hits["huge"]
