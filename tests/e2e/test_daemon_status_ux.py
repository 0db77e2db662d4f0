"""What a new user sees of the daemon, through the real CLI and two real daemons on loopback:
errors with their reason, current rates, sizes without pad files, totals that
survive removals and restarts, single files shared, adding twice, and two nodes
that find each other from a magnet alone (``share --with-peer``, ``add --peer``).

The daemons run with DHT and LSD off, so the only way to a peer is the one the
test hands over.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon_process import Daemon, start_daemon
from servent.cli.api_client import human_bytes
from servent.storage.torrent_creator import create_torrent

WAIT = 60.0
CLI_TIMEOUT = 60.0


def servent_cli(daemon: Daemon, *args: str | Path) -> tuple[int, str, str]:
    """``servent ARGS --data-dir DAEMON`` as a child process: (exit code, stdout, stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "servent", *map(str, args), "--data-dir", str(daemon.data_dir)],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def cli_json(daemon: Daemon, *args: str | Path) -> Any:
    code, out, err = servent_cli(daemon, *args, "--json")
    assert code == 0, (out, err)
    return json.loads(out)  # stdout holds the JSON document and nothing else


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Daemon, Daemon]]:
    first = start_daemon(tmp_path / "seeder-data")
    try:
        second = start_daemon(tmp_path / "leecher-data")
    except BaseException:
        first.stop()
        raise
    try:
        yield first, second
    finally:
        assert second.stop() == 0
        assert first.stop() == 0


def _album(root: Path) -> Path:
    """Files whose sizes are not piece multiples, so a hybrid torrent has pad files."""
    folder = root / "album"
    (folder / "disc2").mkdir(parents=True)
    (folder / "one.flac").write_bytes(os.urandom(3_000_001))
    (folder / "two.flac").write_bytes(os.urandom(1_234_567))
    (folder / "disc2" / "three.flac").write_bytes(os.urandom(777_777))
    return folder


def test_share_with_peer_magnet_alone_reaches_the_other_node(
    pair: tuple[Daemon, Daemon], tmp_path: Path
) -> None:
    seeder, leecher = pair
    folder = _album(tmp_path)
    payload = 3_000_001 + 1_234_567 + 777_777
    shared = cli_json(seeder, "share", folder, "--with-peer")
    assert shared["existing"] is False
    host, port = seeder.ok("GET", "/api/status")["listen_address"]
    assert f"x.pe={host}:{port}" in shared["magnet"]
    # Pad files are no payload: the size is what the files hold.
    torrent_id = shared["id"]
    seeding = seeder.ok("GET", f"/api/torrents/{torrent_id}")
    assert seeding["size"] == seeding["have_bytes"] == payload
    assert create_torrent(folder).total_length == payload
    # Slow enough to read rates while it moves.
    seeder.ok("PUT", f"/api/torrents/{torrent_id}/limits", {"upload_rate_limit": 1_500_000})

    save = tmp_path / "downloads"
    # Watching with --json: the search line goes to stderr, stdout is the JSON alone.
    code, out, err = servent_cli(
        leecher, "add", shared["magnet"], "--save-path", save, "--watch", "--json"
    )
    assert code == 0, err
    added = json.loads(out)
    assert (added["id"], added["existing"]) == (torrent_id, False)
    assert added["peers"] >= 1 and added["have_bytes"] > 0  # it watched until data came
    assert "searching for metadata: DHT off, 0 trackers, 0 peers connected" in err
    path = f"/api/torrents/{torrent_id}"
    samples = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        now = leecher.ok("GET", path)
        if now["progress"] >= 1.0:
            break
        if 0.15 <= now["progress"] <= 0.85:
            samples.append(now["download_rate"])
        time.sleep(0.05)  # polling another process
    else:
        raise AssertionError(f"download not complete within {WAIT} s: {now}")
    # Regression: rates read 0 between timer samples and stayed up after the transfer.
    assert len(samples) >= 5 and all(rate > 0 for rate in samples), samples
    assert files_of(save / "album") == files_of(folder)
    done = leecher.poll(path, lambda t: t["download_rate"] == 0.0, "rate back to 0")
    assert (done["size"], done["have_bytes"], done["state"]) == (payload, payload, "seeding")
    # One seeder, nothing fetched twice: the bytes counted are the files' bytes, pad
    # files left out (they were 200.5 MiB for a 200.0 MiB hybrid torrent).
    assert done["downloaded"] == payload
    assert leecher.ok("GET", "/api/status")["downloaded"] == payload
    assert seeder.ok("GET", f"/api/torrents/{torrent_id}")["uploaded"] == payload
    code, out, _ = servent_cli(leecher, "list")
    assert code == 0 and f"{human_bytes(payload):>10}  ↓0 B/s" in out


def test_add_peer_flag_and_adding_again_says_so(
    pair: tuple[Daemon, Daemon], tmp_path: Path
) -> None:
    seeder, leecher = pair
    single = tmp_path / "report.pdf"
    single.write_bytes(os.urandom(900_000))
    # A single file is shared, not only a folder.
    code, out, err = servent_cli(seeder, "share", single)
    assert code == 0, err
    assert out.startswith(f"sharing {single}")
    magnet = out.splitlines()[1]
    assert "x.pe" not in magnet
    again = cli_json(seeder, "share", single)
    assert again["existing"] is True and again["magnet"] == magnet
    code, out, _ = servent_cli(seeder, "share", single)
    assert code == 0 and out.startswith("already shared")
    host, port = seeder.ok("GET", "/api/status")["listen_address"]
    save = tmp_path / "got"
    # No tracker, no DHT, no x.pe: it waits for metadata that nobody can send ...
    waiting = cli_json(leecher, "add", magnet, "--save-path", save)
    assert (waiting["state"], waiting["existing"]) == ("metadata", False)
    # ... until the same magnet is added again with --peer, the only way to the seeder.
    code, out, err = servent_cli(leecher, "add", magnet, "--peer", f"{host}:{port}", "--watch")
    assert code == 0, err
    assert out.startswith("searching for metadata: DHT off, 0 trackers, 0 peers connected")
    assert "already added:" in out
    torrent_id = out.splitlines()[-1].split()[0]
    (listed,) = leecher.ok("GET", "/api/torrents")
    assert listed["id"].startswith(torrent_id)
    leecher.poll(f"/api/torrents/{listed['id']}", lambda t: t["progress"] == 1.0, "download")
    assert (save / "report.pdf").read_bytes() == single.read_bytes()
    # Adding it again (magnet or .torrent) says so, returns the id and exits 0.
    code, out, _ = servent_cli(leecher, "add", magnet)
    assert code == 0 and out.startswith("already added")
    torrent_file = tmp_path / "report.torrent"
    torrent_file.write_bytes(create_torrent(single).to_bytes())
    added = cli_json(leecher, "add", torrent_file, "--peer", f"[{host}]:{port}")
    assert added["existing"] is True and added["id"] == listed["id"]
    assert len(leecher.ok("GET", "/api/torrents")) == 1


def test_an_errored_torrent_says_why(pair: tuple[Daemon, Daemon], tmp_path: Path) -> None:
    _, leecher = pair
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "data.bin").write_bytes(os.urandom(100_000))
    torrent_file = tmp_path / "src.torrent"
    torrent_file.write_bytes(create_torrent(folder).to_bytes())
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the download folder should be")
    added = cli_json(leecher, "add", torrent_file, "--save-path", blocker / "inside")
    path = f"/api/torrents/{added['id']}"
    failed = leecher.poll(path, lambda t: t["state"] == "error", "error state")
    assert "not-a-folder" in failed["error"]  # the reason, naming the path
    (listed,) = cli_json(leecher, "list")
    assert listed["error"] == failed["error"]
    code, out, _ = servent_cli(leecher, "list")
    assert code == 0 and f"error: {failed['error']}" in out
    assert blocker.read_text() == "a file where the download folder should be"
    # A torrent that runs has "error": null.
    assert cli_json(leecher, "status")["torrents"] == 1
    healthy = leecher.ok("POST", "/api/torrents", {"magnet": "magnet:?xt=urn:btih:" + "ab" * 20})
    assert healthy["error"] is None


def test_add_on_a_terminal_shows_the_search_until_ctrl_c(tmp_path: Path) -> None:
    daemon = start_daemon(tmp_path / "data")
    try:
        magnet = "magnet:?xt=urn:btih:" + "cd" * 20 + "&tr=http%3A%2F%2F127.0.0.1%3A9%2Fannounce"
        # Updated in place (carriage return, erase line), not one line per refresh.
        line = r"\r\x1b\[Ksearching for metadata: DHT off, 1 tracker, 0 peers connected \((\d+) s\)"
        screen = run_on_terminal(
            daemon, ["add", magnet], until=lambda text: len(set(re.findall(line, text))) >= 2
        )
        assert "stopped watching; the daemon keeps searching" in screen
        (torrent,) = daemon.ok("GET", "/api/torrents")  # Ctrl-C stopped the watching only
        assert torrent["state"] == "metadata" and torrent["trackers"] == 1
    finally:
        assert daemon.stop() == 0


def run_on_terminal(daemon: Daemon, args: list[str], until: Callable[[str], bool]) -> str:
    """Run the CLI on a pseudo-terminal, Ctrl-C it once ``until(screen)``; all it wrote."""
    import pty
    import select
    import signal

    leader, follower = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "servent", *args, "--data-dir", str(daemon.data_dir)],
        env=dict(os.environ, PYTHONFAULTHANDLER="1"),
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    screen = b""
    interrupted = False
    deadline = time.monotonic() + WAIT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], max(deadline - time.monotonic(), 0))
            if not ready:
                continue
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
            if not interrupted and until(screen.decode(errors="replace")):
                child.send_signal(signal.SIGINT)
                interrupted = True
        try:
            code = child.wait(timeout=CLI_TIMEOUT)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGABRT)  # faulthandler prints where it is stuck
            child.wait(timeout=10)
            screen += _rest(leader)
            raise AssertionError(f"ran on (Ctrl-C sent: {interrupted}):\n{screen!r}") from None
        assert code == 0, screen
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        os.close(leader)
    assert interrupted, screen
    return screen.decode(errors="replace").replace("\r\n", "\n")


def _rest(leader: int) -> bytes:
    """What is left to read on the terminal (the child has exited)."""
    import select

    rest = b""
    while select.select([leader], [], [], 0)[0]:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        rest += chunk
    return rest


def test_totals_survive_removal_and_restart(tmp_path: Path) -> None:
    seeder = start_daemon(tmp_path / "seeder-data")
    leecher_dir = tmp_path / "leecher-data"
    leecher = start_daemon(leecher_dir)
    try:
        folder = tmp_path / "clip"
        folder.mkdir()
        (folder / "clip.bin").write_bytes(os.urandom(2_000_000))
        shared = seeder.ok("POST", "/api/shares", {"path": str(folder), "with_peer": True})
        added = leecher.ok(
            "POST", "/api/torrents", {"magnet": shared["magnet"], "save_path": str(tmp_path / "d")}
        )
        path = f"/api/torrents/{added['id']}"
        leecher.poll(path, lambda t: t["progress"] == 1.0, "download")
        status = leecher.poll("/api/status", lambda s: s["downloaded"] >= 2_000_000, "totals")
        assert status["all_time_downloaded"] == status["downloaded"]
        code, out, _ = servent_cli(leecher, "remove", added["id"][:12])
        assert code == 0
        after = leecher.ok("GET", "/api/status")
        # Regression: the totals were the sum over current torrents and fell to 0.
        assert after["torrents"] == 0
        assert after["downloaded"] == status["downloaded"]
        seeder_status = seeder.ok("GET", "/api/status")
        assert seeder_status["uploaded"] >= 2_000_000
        code, out, _ = servent_cli(leecher, "status")
        assert code == 0 and "this session" in out and "all time" in out
        assert leecher.stop() == 0
        leecher = start_daemon(leecher_dir)
        restarted = leecher.ok("GET", "/api/status")
        assert restarted["downloaded"] == 0
        assert restarted["all_time_downloaded"] == status["downloaded"]
    finally:
        leecher.stop()
        seeder.stop()
