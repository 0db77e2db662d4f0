"""Search by name across a dozen daemons on loopback (DHT and LSD off).

Three daemons are supernodes (``--supernode on``), nine are leaves; all find
the supernodes through ``--search-bootstrap`` (the first supernode). One leaf
shares a folder; another finds a file in it by two words of its name within
2 s, adds it by the result's short ID with ``servent add`` and downloads it
byte for byte. A node finds another by its display name.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from daemon_process import Daemon, start_daemon
from polling import poll

WAIT = 60.0
_until = functools.partial(poll, within=WAIT, every=0.1)
SIZE = 3 * 1024 * 1024


def _cli(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [sys.executable, "-m", "servent", *args, "--data-dir", str(daemon.data_dir)],
        capture_output=True, text=True, timeout=60, env=env, check=False,
    )  # fmt: skip


def _found(daemon: Daemon, words: str, infohash: str, people: bool = False) -> bool:
    query = f"/api/search?q={words.replace(' ', '+')}&timeout=2" + ("&people=1" if people else "")
    return any(r.get("infohash", r.get("id")) == infohash for r in daemon.ok("GET", query))


def _seconds_to_find(daemon: Daemon, words: str, infohash: str) -> float:
    """Time from the request until the wanted result arrives on the SSE stream."""
    request = urllib.request.Request(f"{daemon.url}/api/search?q={words}&timeout=2")
    request.add_header("Authorization", f"Bearer {daemon.token}")
    request.add_header("Accept", "text/event-stream")
    started = time.monotonic()
    with urllib.request.urlopen(request, timeout=30) as response:
        for raw in response:
            line = raw.decode()
            if line.startswith("data: ") and json.loads(line[6:]).get("infohash") == infohash:
                return time.monotonic() - started
    raise AssertionError(f"{infohash} not found by {words!r}")


def test_a_dozen_daemons_find_and_download_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "music"
    folder.mkdir()
    payload = os.urandom(SIZE)
    (folder / "Blue_Danube-Waltz.flac").write_bytes(payload)
    (folder / "notes.txt").write_bytes(b"liner notes\n" * 100)
    daemons: list[Daemon] = []
    try:
        first = start_daemon(tmp_path / "s0", "--supernode", "on")
        daemons.append(first)
        host, port = first.ok("GET", "/api/status")["listen_address"]
        boot = ("--search-bootstrap", f"{host}:{port}")
        for index in range(1, 3):
            daemons.append(start_daemon(tmp_path / f"s{index}", "--supernode", "on", *boot))
        for index in range(3, 12):
            extra = ("--name", "Alice Liddell") if index == 5 else ()
            daemons.append(
                start_daemon(tmp_path / f"l{index}", "--supernode", "off", *boot, *extra)
            )
        sharer, searcher, alice = daemons[3], daemons[4], daemons[5]
        for daemon in daemons:
            _until(
                lambda d=daemon: d.ok("GET", "/api/status")["search"]["supernodes_known"] >= 3,
                "every node knows the three supernodes",
            )
        assert first.ok("GET", "/api/status")["search"]["role"] == "supernode"
        assert searcher.ok("GET", "/api/status")["search"]["role"] == "leaf"
        status = _cli(first, "status")
        assert "role            supernode" in status.stdout, status.stdout
        for bad in ("q=", "q=x&limit=0", "q=x&timeout=-1", "q=" + "x" * 201):
            assert searcher.call("GET", f"/api/search?{bad}")[0] == 400
        assert searcher.call("GET", "/api/search/results/zz")[0] == 400
        assert searcher.call("GET", "/api/search/results/00000000")[0] == 404

        shared = sharer.ok("POST", "/api/shares", {"path": str(folder)})
        infohash = shared["id"]
        _until(lambda: _found(searcher, "danube waltz", infohash), "the share is published")

        assert _seconds_to_find(searcher, "danube+waltz", infohash) < 2.0
        found = searcher.ok("GET", "/api/search?q=danube+waltz&timeout=2")
        assert [r["infohash"] for r in found] == [infohash]

        listed = _cli(searcher, "search", "danube", "waltz", "--json")
        assert listed.returncode == 0, listed.stderr
        results = json.loads(listed.stdout)
        assert len(results) == 1
        result = results[0]
        assert set(result) == {
            "name",
            "infohash",
            "magnet",
            "size",
            "files",
            "sources",
            "publisher",
        }
        assert result["infohash"] == infohash and result["name"] == "music"
        assert result["sources"] == 1 and result["files"] == 2
        assert result["publisher"] == sharer.ok("GET", "/api/identity")["id"]

        shown = _cli(searcher, "search", "blue", "walt")
        assert shown.returncode == 0, shown.stderr
        short = shown.stdout.split()[0]
        assert len(short) == 8 and infohash.startswith(short)

        added = _cli(searcher, "add", short, "--no-watch", "--json")
        assert added.returncode == 0, added.stderr
        assert json.loads(added.stdout)["id"] == infohash
        status = _until(
            lambda: (
                (s := searcher.ok("GET", f"/api/torrents/{infohash}"))["state"] == "seeding" and s
            ),
            "the download completes",
        )
        downloaded = Path(status["save_path"]) / "music" / "Blue_Danube-Waltz.flac"
        assert downloaded.read_bytes() == payload

        alice_id = alice.ok("GET", "/api/identity")["id"]
        _until(lambda: _found(searcher, "alice", alice_id, people=True), "Alice is found")
        people = _cli(searcher, "search", "--people", "liddell", "--json")
        assert people.returncode == 0, people.stderr
        assert [p["id"] for p in json.loads(people.stdout)] == [alice_id]
    finally:
        for daemon in daemons:
            daemon.stop()
