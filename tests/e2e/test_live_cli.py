"""``servent live FILE`` following a file being written, ``servent stream LIVEKEY --player``.

One daemon broadcasts a file that grows while the CLI follows it; the same
daemon's ``servent stream LIVEKEY`` hands the URL to a "player" (a small
Python reader) that saves what it gets.  The player's bytes are the end of
the file from the live edge on, and everything stops by itself: the CLI ends
the broadcast after ``--idle-end`` seconds without growth, which ends the
player's HTTP body.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon_process import Daemon, start_daemon

pytestmark = pytest.mark.e2e

WITHIN = 60.0
PLAYER = (
    "import sys, urllib.request\n"
    "with urllib.request.urlopen(sys.argv[2], timeout=60) as response:\n"
    "    open(sys.argv[1], 'wb').write(response.read())\n"
)


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    started = start_daemon(tmp_path / "data")
    yield started
    assert started.stop() == 0


async def servent(daemon: Daemon, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "servent", *args, "--data-dir", str(daemon.data_dir),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )  # fmt: skip


async def test_a_growing_file_is_broadcast_and_played_with_a_player(
    daemon: Daemon, tmp_path: Path
) -> None:
    source = tmp_path / "camera.ts"
    source.write_bytes(b"")
    live = await servent(daemon, "live", str(source), "--idle-end", "3", "--json")
    assert live.stdout is not None
    text = b""
    async with asyncio.timeout(WITHIN):
        while not text.rstrip().endswith(b"}"):
            text += await live.stdout.readline()
    started = json.loads(text)
    assert started["live_key"].startswith("live:") and "/live/" in started["url"]
    saved = tmp_path / "played.ts"
    player = f"{shlex.quote(sys.executable)} -c {shlex.quote(PLAYER)} {shlex.quote(str(saved))}"
    watch = await servent(daemon, "stream", started["live_key"], "--player", player)
    written = bytearray()
    with source.open("ab") as file:
        for _ in range(12):
            chunk = os.urandom(50_000)
            file.write(chunk)
            file.flush()
            written += chunk
            await asyncio.sleep(0.25)  # the pace of a recorder, not a synchronisation
    async with asyncio.timeout(WITHIN):
        assert await live.wait() == 0
        out, err = await watch.communicate()
    assert watch.returncode == 0, err.decode()
    assert out.decode().strip().split("/live/")[1].split("/")[1] == started["url"].split("/")[-2]
    played = saved.read_bytes()
    assert played and bytes(written).endswith(played)  # from the live edge to the end
    (listed,) = daemon.ok("GET", "/api/live")
    assert listed["ended"] and listed["bytes_written"] == len(written)


async def test_a_missing_source_is_refused_before_any_broadcast(
    daemon: Daemon, tmp_path: Path
) -> None:
    live = await servent(daemon, "live", str(tmp_path / "absent.ts"))
    async with asyncio.timeout(WITHIN):
        out, err = await live.communicate()
    assert live.returncode != 0 and b"no such file" in err and out == b""
    assert daemon.ok("GET", "/api/live") == []
