"""A download whose only peer source is local service discovery (BEP 14).

Two ``servent`` processes in two network namespaces made by the test, joined
by a bridge in a third: one seeds, the other downloads the same torrent with
``--lsd`` and no peer, tracker or DHT; it can only learn the seeder's
address from the seeder's multicast announces.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_lsd_netns import bridged_hosts

from interop.reference_clients import write_payload
from servent.storage.torrent_creator import create_torrent

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SEEDER_IP, LEECHER_IP = "10.213.9.1", "10.213.9.2"
DEADLINE = 60


@pytest.fixture
def lan() -> Iterator[tuple[str, str]]:
    """Two namespaces on one bridge (multicast routed to their eth0)."""
    with bridged_hosts("sl", (f"{SEEDER_IP}/24", f"{LEECHER_IP}/24")) as hosts:
        yield hosts


NODE = r"""
import asyncio, sys
from servent.codec.metainfo import parse_torrent
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.torrent_discovery import DiscoveryConfig
role, ip, torrent, folder = sys.argv[1:5]
# Periodic announces every 5 minutes: only an answer to a newcomer can help within the test.
config = EngineConfig(
    listen_host=ip, lsd=True, lsd_interface=ip, trackers=False,
    discovery=DiscoveryConfig(lsd_interval=300.0, lsd_reply_interval=0.5),
)
async def main():
    async with SwarmEngine(config) as engine:
        session = await engine.add_torrent(parse_torrent(open(torrent, "rb").read()), folder)
        if role == "seed":
            print("SEEDING", flush=True)
            await asyncio.Event().wait()
        async with asyncio.timeout(30):
            await session.wait_complete()
        print("DONE", sorted(session.statistics().downloaded_from), flush=True)
asyncio.run(main())
"""


def servent_in(ns: str, *args: str | Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-m", "servent", *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def seed_then_get(
    seeder: subprocess.Popen[str], ready: str, start_leecher: Callable[[], subprocess.Popen[str]]
) -> tuple[int, str, str]:
    """Wait for the seeder's first line to start with ``ready``, run the leecher to its
    end (bounded), stop the seeder; the leecher's exit code, stdout and stderr."""
    try:
        assert seeder.stdout is not None
        first = seeder.stdout.readline()
        if not first.startswith(ready):
            seeder.kill()
            raise AssertionError(f"seeder did not start: {first!r} {seeder.communicate()[1]}")
        leecher = start_leecher()
        try:
            out, err = leecher.communicate(timeout=DEADLINE)
        finally:
            if leecher.poll() is None:
                leecher.kill()
                leecher.wait(timeout=10)
    finally:
        seeder.kill()
        seeder.wait(timeout=10)
    return leecher.returncode, out, err


def test_download_finds_its_seeder_by_lsd_only(lan: tuple[str, str], tmp_path: Path) -> None:
    seeder_ns, leecher_ns = lan
    data = write_payload(tmp_path / "share" / "movie.bin", 700_000, seed=5)
    meta = create_torrent(tmp_path / "share" / "movie.bin")
    torrent = tmp_path / "movie.torrent"
    torrent.write_bytes(meta.to_bytes())
    lsd = ("--lsd", "--lsd-interval", "1", "--no-trackers")
    seeder = servent_in(
        seeder_ns, "seed", tmp_path / "share" / "movie.bin", "--torrent", torrent,
        "--host", SEEDER_IP,
        *lsd, "--lsd-interface", SEEDER_IP,
    )  # fmt: skip
    code, out, err = seed_then_get(
        seeder,
        f"listening on {SEEDER_IP}:",
        lambda: servent_in(
            leecher_ns, "get", torrent, "-o", tmp_path / "down",
            *lsd, "--lsd-interface", LEECHER_IP,
        ),
    )  # fmt: skip
    assert code == 0, err
    assert "verified" in out and "from 1 peer(s)" in out, out
    assert (tmp_path / "down" / "movie.bin").read_bytes() == data


def python_in(ns: str, script: str, *args: str | Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-c", script, *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def test_a_seeder_answers_a_newcomers_lsd_announce(lan: tuple[str, str], tmp_path: Path) -> None:
    """The seeder's own announce went out before the leecher listened; its answer to the
    leecher's announce (not its 5-minute schedule) is what the leecher finds it by."""
    seeder_ns, leecher_ns = lan
    data = write_payload(tmp_path / "share" / "movie.bin", 300_000, seed=6)
    meta = create_torrent(tmp_path / "share" / "movie.bin")
    torrent = tmp_path / "movie.torrent"
    torrent.write_bytes(meta.to_bytes())
    seeder = python_in(seeder_ns, NODE, "seed", SEEDER_IP, torrent, tmp_path / "share")
    code, out, err = seed_then_get(
        seeder,
        "SEEDING",
        lambda: python_in(leecher_ns, NODE, "get", LEECHER_IP, torrent, tmp_path / "down"),
    )
    assert code == 0, err
    assert out.startswith("DONE") and SEEDER_IP in out, out
    assert (tmp_path / "down" / "movie.bin").read_bytes() == data
