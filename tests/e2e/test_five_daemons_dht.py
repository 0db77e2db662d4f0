"""Five daemons on loopback, one DHT bootstrapped from the first of them.

One daemon shares a folder; a second downloads it by its bare magnet link
(peers found through the DHT only) through the HTTP API; a third then
downloads it from both.  The API must show progress and peers throughout.
Uploads are rate-limited so the transfers last long enough to be watched.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from daemon_process import Daemon, start_daemon

SIZE = 4 * 1024 * 1024
RATE = 1_000_000  # bytes/s per seeding daemon
WAIT = 60.0
DHT_FLAGS = ("--dht-enabled", "true", "--dht-restrict-ips", "false")


def _watch_download(daemon: Daemon, torrent_id: str) -> tuple[list[float], set[int]]:
    """Poll a download until done: progress seen, and the peer ports listed on the way."""
    progress: list[float] = []
    ports: set[int] = set()
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        status = daemon.ok("GET", f"/api/torrents/{torrent_id}")
        peers = daemon.ok("GET", f"/api/torrents/{torrent_id}/peers")
        ports.update(p["port"] for p in peers)
        progress.append(status["progress"])
        if status["progress"] == 1.0 and status["state"] == "seeding":
            return progress, ports
        time.sleep(0.1)  # polling another process's API
    raise AssertionError(f"download not done within {WAIT} s: {progress[-5:]}")


def test_five_daemons_share_and_download_by_magnet_over_the_dht(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    (folder / "2026").mkdir(parents=True)
    (folder / "2026" / "a.raw").write_bytes(os.urandom(SIZE))
    (folder / "index.txt").write_bytes(b"photos of a trip\n" * 500)
    daemons: list[Daemon] = []
    try:
        # The first daemon is the DHT's entry point (its own bootstrap list is a
        # closed loopback port, so it contacts nobody outside).
        first = start_daemon(tmp_path / "d0", *DHT_FLAGS, "--dht-bootstrap", "127.0.0.1:9")
        daemons.append(first)
        host, port = first.ok("GET", "/api/status")["dht_address"]
        for index in range(1, 5):
            daemons.append(
                start_daemon(
                    tmp_path / f"d{index}", *DHT_FLAGS, "--dht-bootstrap", f"{host}:{port}"
                )
            )
        for daemon in daemons:
            daemon.poll("/api/status", lambda s: s["dht_nodes"] >= 2, "DHT joined")
        sharer, second, third = daemons[1], daemons[2], daemons[3]

        shared = sharer.ok("POST", "/api/shares", {"path": str(folder)})
        torrent_id, magnet = shared["id"], shared["magnet"]
        assert "x.pe" not in magnet and "tr=" not in magnet  # the DHT is the only way
        sharer.ok("PUT", f"/api/torrents/{torrent_id}/limits", {"upload_rate_limit": RATE})
        sharer_port = sharer.ok("GET", "/api/status")["listen_address"][1]

        added = second.ok("POST", "/api/torrents", {"magnet": magnet})
        assert added["id"] == torrent_id and added["state"] in ("metadata", "checking")
        progress, ports = _watch_download(second, torrent_id)
        assert any(0.0 < p < 1.0 for p in progress), "progress shown mid-way"
        assert progress == sorted(progress)
        assert sharer_port in ports
        files = second.ok("GET", f"/api/torrents/{torrent_id}/files")
        assert sorted(f["path"] for f in files) == ["photos/2026/a.raw", "photos/index.txt"]
        assert all(f["progress"] == 1.0 for f in files)
        second.ok("PUT", f"/api/torrents/{torrent_id}/limits", {"upload_rate_limit": RATE})
        second_port = second.ok("GET", "/api/status")["listen_address"][1]

        third.ok("POST", "/api/torrents", {"magnet": magnet})
        progress, ports = _watch_download(third, torrent_id)
        assert {sharer_port, second_port} <= ports, "the third daemon used both sources"
        done = third.ok("GET", f"/api/torrents/{torrent_id}")
        save = Path(done["save_path"]) / "photos"
        assert (save / "2026" / "a.raw").read_bytes() == (folder / "2026" / "a.raw").read_bytes()
        # Both sources sent payload to the third daemon.
        assert second.ok("GET", f"/api/torrents/{torrent_id}")["uploaded"] > 0
        assert sharer.ok("GET", f"/api/torrents/{torrent_id}")["uploaded"] > SIZE
        node = third.ok("GET", "/api/status")
        assert node["downloaded"] >= SIZE and node["dht_nodes"] >= 2
    finally:
        for daemon in reversed(daemons):
            daemon.stop()
