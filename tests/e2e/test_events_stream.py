"""Events pushed end to end: two real daemons, a real download, ``servent events --json``
as a subprocess, and the SSE stream read with a raw HTTP client (event names checked)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from urllib.parse import urlsplit

from servent_cli import servent

from daemon_process import Daemon, start_daemon

WAIT = 60.0


async def _raw_event_stream(daemon: Daemon) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """GET /api/events over a plain socket; returns once the headers are read."""
    address = urlsplit(daemon.url)
    assert address.hostname is not None and address.port is not None
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    writer.write(
        f"GET /api/events HTTP/1.0\r\nHost: {address.netloc}\r\n"
        f"Authorization: Bearer {daemon.token}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)
    assert head.split(b"\r\n")[0].split()[1] == b"200"
    assert b"text/event-stream" in head.lower()
    return reader, writer


async def _sse_until(
    reader: asyncio.StreamReader, last: str
) -> list[tuple[str, dict[str, object]]]:
    """Events (name, JSON data) read from the SSE body until one named ``last``."""
    seen: list[tuple[str, dict[str, object]]] = []
    name = ""
    async with asyncio.timeout(WAIT):
        while True:
            line = (await reader.readline()).decode().rstrip("\r\n")
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: ") and name:
                data = json.loads(line.removeprefix("data: "))
                if name != "torrents":
                    seen.append((name, data))
                    if name == last:
                        return seen
                name = ""


def _folder(root: Path) -> Path:
    folder = root / "album"
    (folder / "disc").mkdir(parents=True)
    (folder / "big.bin").write_bytes(os.urandom(600_000))
    (folder / "disc" / "notes.txt").write_bytes(b"liner notes " * 2000)
    return folder


async def test_events_cli_and_sse_see_a_real_download_added_then_completed(
    tmp_path: Path,
) -> None:
    folder = _folder(tmp_path)
    seeder = start_daemon(tmp_path / "seeder")
    leecher = start_daemon(tmp_path / "leecher")
    try:
        shared = seeder.ok("POST", "/api/shares", {"path": str(folder)})
        port = seeder.ok("GET", "/api/status")["listen_address"][1]
        magnet = f"{shared['magnet']}&x.pe=127.0.0.1:{port}"
        reader, writer = await _raw_event_stream(leecher)
        async with servent("events", "--json", "--data-dir", leecher.data_dir) as cli:
            await cli.wait_line("Ctrl-C stops", stream="stderr")
            leecher.ok("POST", "/api/torrents", {"magnet": magnet})
            await cli.wait_line('"type": "torrent_completed"', within=WAIT)
            cli.kill(signal.SIGINT)  # Ctrl-C ends it, quietly
            assert await cli.wait(30) == 0
        printed = [json.loads(line) for line in cli.stdout if line.startswith("{")]
        types = [event["type"] for event in printed]
        assert types.index("torrent_added") < types.index("metadata_received")
        assert types.index("metadata_received") < types.index("torrent_completed")
        completed = printed[types.index("torrent_completed")]
        assert (completed["torrent_id"], completed["name"]) == (shared["id"], "album")

        sse = await _sse_until(reader, "torrent_completed")
        writer.close()
        names = [name for name, _ in sse]
        assert names.index("torrent_added") < names.index("torrent_completed")
        assert all(data["type"] == name for name, data in sse)  # named after its type
        assert sse[names.index("torrent_added")][1]["torrent_id"] == shared["id"]

        status = leecher.ok("GET", f"/api/torrents/{shared['id']}")
        got = Path(status["save_path"]) / "album"
        assert (got / "big.bin").read_bytes() == (folder / "big.bin").read_bytes()
        assert (got / "disc" / "notes.txt").read_bytes() == (folder / "disc/notes.txt").read_bytes()
    finally:
        assert leecher.stop() == 0
        assert seeder.stop() == 0
