"""Benchmark: watching while downloading: time to first byte and to a seek at 80 %.

Run: ``.venv/bin/python -m bench.stream [--runs 5] [--seconds 20] [--factor 4]``.
A video is made with ffmpeg (``testsrc`` plus noise, MPEG-4 part 2, index at
the end), its bitrate read back; an in-process seeder node shares it with its
upload limited to ``--factor`` times that bitrate.  For each run a fresh
viewer daemon (in-process, the real HTTP API) adds the .torrent (metadata
fetch excluded), then, like a player:

* time to first byte: ``GET`` the stream URL with ``Range: bytes=0-`` and
  time until the first body byte arrives;
* seek: ``GET`` with ``Range: bytes=<80 %>-`` while the download runs, and
  time until its first byte arrives.

Printed: the median and worst of each, and how much of the torrent was
verified when the seek was answered (far below 80 % shows the seek jumped the
queue).  Reference in the same run: libtorrent downloading from the same
seeder with ``set_piece_deadline`` on the first piece, then on the piece at
80 %, timed until each piece is verified (no HTTP: libtorrent has no server,
so its figures leave out the read and the HTTP round trip that servent's
include).  All traffic is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import libtorrent as lt

from servent.daemon.server import run_daemon
from servent.node.config import load_config
from servent.node.node import Node
from servent.storage.torrent_creator import create_torrent


def make_video(path: Path, seconds: int) -> float:
    """Write the video; returns its bitrate in bytes per second."""
    source = f"testsrc=duration={seconds}:size=640x360:rate=25,noise=alls=30:allf=t"
    encode = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source, "-c:v", "mpeg4"]
    subprocess.run([*encode, "-q:v", "5", str(path)], check=True, timeout=300)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    duration = float(json.loads(probe.stdout)["format"]["duration"])
    return path.stat().st_size / duration


def node_values(root: Path, name: str) -> dict[str, object]:
    return {
        "data_dir": str(root / name),
        "dht_enabled": False,
        "lsd_enabled": False,
        "listen_host": "127.0.0.1",
        "listen_port": 0,
        "api_host": "127.0.0.1",
        "api_port": 0,
    }


async def first_byte(session: aiohttp.ClientSession, url: str, start: int) -> float:
    """Seconds from sending a ranged GET to its first body byte."""
    began = time.perf_counter()
    async with session.get(url, headers={"Range": f"bytes={start}-"}) as response:
        assert response.status == 206, response.status
        await response.content.readexactly(1)
        return time.perf_counter() - began


async def one_run(
    root: Path, seeder: Node, torrent: bytes, size: int
) -> tuple[float, float, float]:
    ready: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    config = load_config(None, node_values(root, "viewer"))
    daemon = asyncio.create_task(
        run_daemon(config, on_ready=lambda url, token: ready.set_result((url, token)), stop=stop)
    )
    try:
        url, token = await asyncio.wait_for(ready, 60)
        address = seeder.status().listen_address
        assert address is not None
        auth = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            query = f"?peer=127.0.0.1:{address[1]}"
            headers = {**auth, "Content-Type": "application/x-bittorrent"}
            async with session.post(
                f"{url}/api/torrents{query}", data=torrent, headers=headers
            ) as r:
                torrent_id = (await r.json())["id"]
            async with session.post(
                f"{url}/api/torrents/{torrent_id}/stream", json={}, headers=auth
            ) as r:
                stream = (await r.json())["url"]
            ttfb = await first_byte(session, stream, 0)
            seek = await first_byte(session, stream, size * 8 // 10)
            async with session.get(f"{url}/api/torrents/{torrent_id}", headers=auth) as r:
                progress = float((await r.json())["progress"])
        return ttfb, seek, progress
    finally:
        stop.set()
        await asyncio.wait_for(daemon, 60)


def lt_session() -> Any:
    return lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "outgoing_interfaces": "127.0.0.1",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "enable_outgoing_utp": False,
            "enable_incoming_utp": False,
            "alert_mask": 0,
        }
    )


async def until_have(handle: Any, index: int, began: float) -> float:
    """Seconds from ``began`` until libtorrent has piece ``index`` (polled every 2 ms)."""
    async with asyncio.timeout(120):
        while not handle.have_piece(index):  # noqa: ASYNC110 (libtorrent offers no awaitable)
            await asyncio.sleep(0.002)
    return time.perf_counter() - began


async def libtorrent_run(root: Path, seeder: Node, torrent: bytes) -> tuple[float, float]:
    """libtorrent's time to the first piece and to the piece at 80 %, each with a deadline."""
    address = seeder.status().listen_address
    assert address is not None
    session = lt_session()
    params = lt.add_torrent_params()
    info = lt.torrent_info(torrent)
    params.ti = info
    params.save_path = str(root)
    handle = session.add_torrent(params)
    try:
        began = time.perf_counter()
        handle.set_piece_deadline(0, 0)
        handle.connect_peer(("127.0.0.1", address[1]))
        first = await until_have(handle, 0, began)
        seek_piece = info.num_pieces() * 8 // 10
        began = time.perf_counter()
        handle.set_piece_deadline(seek_piece, 0)
        seek = await until_have(handle, seek_piece, began)
        return first, seek
    finally:
        session.remove_torrent(handle)


async def main(runs: int, seconds: int, factor: float) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        root = Path(tmp)
        folder = root / "show"
        folder.mkdir()
        bitrate = make_video(folder / "movie.mp4", seconds)
        size = (folder / "movie.mp4").stat().st_size
        metainfo = create_torrent(folder)
        torrent = metainfo.to_bytes()
        async with Node(load_config(None, node_values(root, "seeder"))) as seeder:
            shared = await seeder.share(folder)
            await seeder.set_limits(shared.id, upload_rate_limit=int(bitrate * factor))
            print(
                f"video: {size / 1e6:.1f} MB, {seconds} s, bitrate {bitrate * 8 / 1e6:.2f} Mbit/s;"
                f" seeder limited to {factor:g}x = {bitrate * factor / 1e6:.2f} MB/s;"
                f" {metainfo.num_pieces} pieces of {metainfo.piece_length // 1024} KiB"
            )
            results = []
            for run in range(runs):
                result = await one_run(root / f"run{run}", seeder, torrent, size)
                results.append(result)
                print(
                    f"run {run}: first byte {result[0] * 1000:.0f} ms, seek to 80 % "
                    f"{result[1] * 1000:.0f} ms (torrent {result[2] * 100:.0f} % verified)"
                )
            references = []
            for run in range(runs):
                reference = await libtorrent_run(root / f"lt{run}", seeder, torrent)
                references.append(reference)
                print(
                    f"libtorrent run {run}: first piece {reference[0] * 1000:.0f} ms, "
                    f"piece at 80 % {reference[1] * 1000:.0f} ms"
                )
        ttfb = [r[0] for r in results]
        seek = [r[1] for r in results]
        print(
            f"time to first byte: median {statistics.median(ttfb) * 1000:.0f} ms, "
            f"worst {max(ttfb) * 1000:.0f} ms (target <= 1000 ms)"
        )
        print(
            f"seek to 80 %: median {statistics.median(seek) * 1000:.0f} ms, "
            f"worst {max(seek) * 1000:.0f} ms (target <= 500 ms)"
        )


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # libtorrent may crash at exit: print as we go
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=20, help="length of the video")
    parser.add_argument("--factor", type=float, default=4.0, help="seeder rate / bitrate")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.seconds, args.factor))
