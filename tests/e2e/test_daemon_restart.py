"""kill -9 a daemon and start it again on the same data directory: nothing is lost."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from pathlib import Path

from daemon_process import start_daemon

MAGNET = "magnet:?xt=urn:btih:" + "ef" * 20 + "&dn=waiting"


def test_kill_9_then_restart_keeps_torrents_settings_and_shares(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    folder = tmp_path / "share"
    folder.mkdir()
    (folder / "payload.bin").write_bytes(os.urandom(300_000))
    (folder / "small.txt").write_bytes(b"x" * 1000)

    first = start_daemon(data_dir)
    try:
        magnet_id = first.ok("POST", "/api/torrents", {"magnet": MAGNET})["id"]
        shared = first.ok("POST", "/api/shares", {"path": str(folder)})
        first.ok("POST", f"/api/torrents/{magnet_id}/pause")
        small = first.ok("GET", f"/api/torrents/{shared['id']}/files")[1]["index"]
        first.ok("PUT", f"/api/torrents/{shared['id']}/priorities", {"priorities": {small: 4}})
        first.ok("PATCH", "/api/settings", {"download_rate_limit": 123_000})
        before = {t["id"]: t for t in first.ok("GET", "/api/torrents")}
        token = first.token
    finally:
        first.stop(signal.SIGKILL)
    assert first.process.returncode == -signal.SIGKILL
    # The stale daemon.json of the killed daemon stays; the new daemon replaces it.
    assert json.loads((data_dir / "daemon.json").read_text())["pid"] == first.process.pid

    second = start_daemon(data_dir)
    try:
        assert second.token == token  # the token is kept, clients keep working
        after = {t["id"]: t for t in second.ok("GET", "/api/torrents")}
        assert after.keys() == before.keys()
        assert after[magnet_id]["paused"] is True
        assert after[magnet_id]["state"] == "paused"
        assert after[magnet_id]["name"] == "waiting"
        assert after[shared["id"]]["progress"] == 1.0
        assert after[shared["id"]]["state"] == "seeding"
        files = second.ok("GET", f"/api/torrents/{shared['id']}/files")
        assert [f["priority"] for f in files] == [1, 4]
        assert second.ok("GET", "/api/settings")["download_rate_limit"] == 123_000
        assert [s["path"] for s in second.ok("GET", "/api/shares")] == [str(folder)]
        assert second.ok("GET", "/api/status")["shared_folders"] == [str(folder)]
    finally:
        assert second.stop() == 0
    # A clean stop removes daemon.json; the database is intact.
    assert not (data_dir / "daemon.json").exists()
    db = sqlite3.connect(data_dir / "state.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


def test_second_daemon_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    first = start_daemon(tmp_path)
    try:
        import subprocess
        import sys

        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "servent",
                "daemon",
                "--data-dir",
                str(tmp_path),
                "--api-port",
                "0",
                "--listen-port",
                "0",
                "--dht-enabled",
                "false",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 1
        assert f"already runs for the data directory {tmp_path}" in result.stderr
        assert first.url in result.stderr
        assert first.ok("GET", "/api/status")["torrents"] == 0
    finally:
        assert first.stop() == 0


def test_config_file_and_sigint_with_an_open_event_stream(tmp_path: Path) -> None:
    import urllib.request

    config = tmp_path / "servent.toml"
    config.write_text(
        'api_host = "127.0.0.1"\nupload_rate_limit = 2048\nmax_peers_per_torrent = 7\n'
        f'download_dir = "{tmp_path / "incoming"}"\n'
    )
    daemon = start_daemon(tmp_path / "data", "--config", str(config))
    try:
        settings = daemon.ok("GET", "/api/settings")
        assert (settings["upload_rate_limit"], settings["max_peers_per_torrent"]) == (2048, 7)
        assert settings["download_dir"] == str(tmp_path / "incoming")
        request = urllib.request.Request(daemon.url + "/api/events")
        request.add_header("Authorization", f"Bearer {daemon.token}")
        with urllib.request.urlopen(request, timeout=15) as stream:
            assert stream.readline() == b"event: torrents\n"
            daemon.process.send_signal(signal.SIGINT)
            rest = stream.read()  # the daemon ends the stream when it stops
        assert isinstance(rest, bytes)
        code = daemon.process.wait(timeout=20)  # SIGINT alone stops it
    finally:
        if daemon.process.poll() is None:
            daemon.stop()
    assert code == 0
    assert not (tmp_path / "data" / "daemon.json").exists()
