"""uTP with libtorrent across a lossy, delayed path (both directions).

A user-space relay on loopback (``tests/e2e/utp_stream_peer.py relay``)
delays every datagram by 20 ms and drops 2 % of them each way, so both
implementations' loss recovery (libtorrent's SACKs, servent's fast
retransmit and timeouts) meet. libtorrent's TCP is off: only uTP can work.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reference_clients import (
    LOOPBACK,
    create_torrent_with_libtorrent,
    libtorrent_peer,
    libtorrent_seeder,
    write_content,
)

from servent.codec.metainfo import parse_torrent
from servent.net.engine import EngineConfig, SwarmEngine

pytestmark = pytest.mark.interop

RELAY = Path(__file__).resolve().parents[1] / "e2e" / "utp_stream_peer.py"
DEADLINE = 120.0
SIZE = 1_500_000
UTP_ONLY: dict[str, Any] = {
    "enable_outgoing_utp": True,
    "enable_incoming_utp": True,
    "enable_outgoing_tcp": False,
    "enable_incoming_tcp": False,
}


@pytest.fixture
def relay_to() -> Iterator[Any]:
    """``start(port)`` runs a lossy relay in front of ``127.0.0.1:port``; returns its port."""
    processes: list[subprocess.Popen[str]] = []

    def start(port: int) -> int:
        process = subprocess.Popen(
            [sys.executable, str(RELAY), "relay", LOOPBACK, LOOPBACK, str(port), "0.02", "0.02",
             "--deadline", str(DEADLINE + 30)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        processes.append(process)
        assert process.stdout is not None
        first = process.stdout.readline().split()
        assert first and first[0] == "PORT", "the relay did not start"
        return int(first[1])

    try:
        yield start
    finally:
        for process in processes:
            process.kill()
            process.wait(timeout=10)


async def test_servent_downloads_from_libtorrent_through_loss(
    tmp_path: Path, relay_to: Any
) -> None:
    expected = write_content(tmp_path / "seed", {"a.bin": SIZE})
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", version="v1")
    config = EngineConfig(listen_host=LOOPBACK, utp=True, utp_preference="prefer-utp")
    with libtorrent_peer(**UTP_ONLY) as seeder:
        await libtorrent_seeder(seeder, torrent, tmp_path / "seed")
        relay_port = relay_to(seeder.port)
        async with SwarmEngine(config) as engine:
            session = await engine.add_torrent(
                parse_torrent(torrent), tmp_path / "out", peers=[(LOOPBACK, relay_port)]
            )
            await asyncio.wait_for(session.wait_complete(), DEADLINE)
            assert engine.dialer.outcomes["utp"] >= 1
    assert (tmp_path / "out" / "content" / "a.bin").read_bytes() == expected["a.bin"]


async def test_libtorrent_downloads_from_servent_through_loss(
    tmp_path: Path, relay_to: Any
) -> None:
    expected = write_content(tmp_path / "seed", {"a.bin": SIZE})
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", version="v1")
    async with SwarmEngine(EngineConfig(listen_host=LOOPBACK, utp=True)) as engine:
        await engine.add_torrent(parse_torrent(torrent), tmp_path / "seed")
        relay_port = relay_to(engine.port)
        with libtorrent_peer(**UTP_ONLY) as leecher:
            handle = leecher.add_torrent(torrent, tmp_path / "out", seed=False)
            handle.connect_peer((LOOPBACK, relay_port), 0, 0)
            await leecher.wait_complete(handle, DEADLINE)
        assert engine.utp is not None and engine.utp.accepted >= 1
    assert (tmp_path / "out" / "content" / "a.bin").read_bytes() == expected["a.bin"]
