"""The README's quick start: a second node on the same machine, with the flags it shows.

The commands are read from README.md itself, so the README cannot name a flag
that does not exist.  Ports are changed to 0 (tests never use fixed ports) and
both nodes are kept off the internet (loopback peers, no DHT, no LSD), as the
README's own offline recipe says.  The second node then fetches a folder the
first one shares, from a magnet link with the first node's address (``x.pe``).
"""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from polling import poll

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60.0
UI_LINE = re.compile(r"Open the web UI: (http://127\.0\.0\.1:\d+)/")
OFFLINE = ("--listen-host", "127.0.0.1", "--dht-enabled", "false", "--lsd-enabled", "false")


def _quick_start() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index("## Quick start") : text.index("\n## ", text.index("## Quick start"))]


def _readme_command(quick_start: str, subcommand: str) -> list[str]:
    """The quick start's ``.venv/bin/servent SUBCOMMAND ...`` line, without its comment."""
    prefix = f".venv/bin/servent {subcommand} "
    (line,) = [ln for ln in quick_start.splitlines() if ln.startswith(prefix)]
    return shlex.split(line, comments=True)[1:]


def _with(args: list[str], flag: str, value: str) -> list[str]:
    """``args`` with ``flag``'s value replaced (the flag must be there)."""
    assert flag in args, f"the README's command lacks {flag}"
    at = args.index(flag)
    return [*args[: at + 1], value, *args[at + 2 :]]


def _servent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "servent", *args],
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )


def _start(args: list[str]) -> tuple[subprocess.Popen[str], str]:
    """Start ``servent start`` with ``args``; returns it and its UI address once printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "servent", *args, *OFFLINE],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    assert process.stdout is not None
    deadline = time.monotonic() + WAIT
    seen: list[str] = []
    while time.monotonic() < deadline and process.poll() is None:
        ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
        if ready:
            seen.append(process.stdout.readline())
            match = UI_LINE.search(seen[-1])
            if match:
                return process, match.group(1)
    process.kill()
    process.wait(10)
    raise AssertionError("the node printed no UI address:\n" + "".join(seen))


@pytest.fixture
def nodes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.terminate()
    for process in started:
        try:
            assert process.wait(20) == 0
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
            raise


def _status(data_dir: Path) -> dict[str, str]:
    result = _servent("status", "--data-dir", str(data_dir))
    assert result.returncode == 0, result.stderr
    rows = (re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in result.stdout.splitlines())
    return {row[0]: row[1] for row in rows if len(row) == 2}


def test_readme_says_what_the_node_exposes() -> None:
    quick_start = _quick_start()
    assert "public Mainline DHT" in quick_start
    assert "port 6881" in quick_start and "all interfaces" in quick_start
    # The quick start's two commands stay as they are.
    assert "./scripts/start    # installs servent" in quick_start
    assert "./scripts/test     # installs what the tests need" in quick_start


def test_second_node_on_the_same_machine_with_the_readme_flags(
    nodes: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    quick_start = _quick_start()
    second_start = _readme_command(quick_start, "start")
    assert second_start[:2] == ["start", "--data-dir"]
    second_start = _with(second_start, "--data-dir", str(tmp_path / "servent-2"))
    second_start = _with(_with(second_start, "--listen-port", "0"), "--api-port", "0")
    first_dir = tmp_path / "servent-1"

    first, first_url = _start(
        ["start", "--data-dir", str(first_dir), "--listen-port", "0", "--api-port", "0"]
    )
    nodes.append(first)
    second, second_url = _start(second_start)
    nodes.append(second)
    assert first_url != second_url

    # The README's follow-up command reaches the second node through its data directory.
    listing = _readme_command(quick_start, "list")
    listing = _with(listing, "--data-dir", str(tmp_path / "servent-2"))
    result = _servent(*listing, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    one, two = _status(first_dir), _status(tmp_path / "servent-2")
    assert one["API and web UI"] == first_url and two["API and web UI"] == second_url
    assert one["peers on"] != two["peers on"]

    # The offline recipe: the second node fetches what the first shares via x.pe.
    folder = tmp_path / "album"
    folder.mkdir()
    song = os.urandom(200_000)
    (folder / "song.bin").write_bytes(song)
    shared = _servent("share", str(folder), "--data-dir", str(first_dir))
    assert shared.returncode == 0, shared.stderr
    magnet = next(ln for ln in shared.stdout.split() if ln.startswith("magnet:"))
    added = _servent(
        "add", f"{magnet}&x.pe={one['peers on']}", "--data-dir", str(tmp_path / "servent-2")
    )
    assert added.returncode == 0, added.stderr
    copy = tmp_path / "servent-2" / "downloads" / "album" / "song.bin"
    poll(lambda: copy.exists() and copy.read_bytes() == song, "the second node fetches the folder",
         WAIT, every=0.1)  # fmt: skip
