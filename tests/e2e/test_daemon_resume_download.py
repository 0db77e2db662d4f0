"""kill -9 a daemon in the middle of a download, start it again on the same data
directory: it resumes by itself and completes without fetching verified pieces again.

Two real daemons on loopback; the seeder's upload is rate-limited so the kill
lands mid-way.  The leecher knows the seeder from the magnet's ``x.pe`` and
gets the metadata as a .torrent through the API.
"""

from __future__ import annotations

import base64
import os
import signal
from pathlib import Path

from daemon_process import Daemon, start_daemon
from servent.storage.torrent_creator import create_torrent

SIZE = 8 * 1024 * 1024
RATE = 2_000_000  # bytes/s from the seeder: about 4 s for the payload
#: Verified bytes a kill -9 may cost: up to one resume-data interval (1 s) of
#: pieces plus blocks in flight.
SLACK = RATE + 512 * 1024
WAIT = 60.0


def test_kill_9_mid_download_resumes_without_refetching_verified_pieces(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "movie"
    folder.mkdir()
    (folder / "film.bin").write_bytes(os.urandom(SIZE))
    (folder / "notes.txt").write_bytes(b"subtitles " * 1000)
    metainfo = create_torrent(folder)
    seeder = start_daemon(tmp_path / "seeder")
    leecher: Daemon | None = None
    try:
        shared = seeder.ok("POST", "/api/shares", {"path": str(folder)})
        torrent_id = shared["id"]
        seeder.ok("PUT", f"/api/torrents/{torrent_id}/limits", {"upload_rate_limit": RATE})
        port = seeder.ok("GET", "/api/status")["listen_address"][1]
        magnet = f"{shared['magnet']}&x.pe=127.0.0.1:{port}"
        torrent_b64 = base64.b64encode(metainfo.to_bytes()).decode()

        leecher = start_daemon(tmp_path / "leecher")
        leecher.ok("POST", "/api/torrents", {"magnet": magnet})
        leecher.ok("POST", "/api/torrents", {"torrent": torrent_b64})
        path = f"/api/torrents/{torrent_id}"
        peers_seen = leecher.poll(path + "/peers", bool, "the leecher lists the seeder")
        assert peers_seen[0]["port"] == port and peers_seen[0]["client"].startswith("servent")
        mid = leecher.poll(
            path,
            lambda t: 0.35 <= t["progress"] < 0.75,
            "download mid-way",
        )
        assert mid["state"] == "downloading" and mid["download_rate"] > 0
        leecher.stop(signal.SIGKILL)
        have_before = mid["have_bytes"]

        leecher = start_daemon(tmp_path / "leecher")  # no API call: it resumes by itself
        first = leecher.ok("GET", path)
        resumed_with = first["have_bytes"] - first["downloaded"]
        assert resumed_with >= have_before - SLACK
        done = leecher.poll(path, lambda t: t["progress"] == 1.0, "download complete")
        assert done["state"] == "seeding"
        # This run fetched only what was missing (plus what the kill cost at most).
        assert done["downloaded"] <= metainfo.total_length - have_before + SLACK
        assert done["downloaded"] < metainfo.total_length - SIZE // 4
        save = Path(done["save_path"]) / "movie"
        assert (save / "film.bin").read_bytes() == (folder / "film.bin").read_bytes()
        assert (save / "notes.txt").read_bytes() == (folder / "notes.txt").read_bytes()
        # The seeder sent the payload once, plus at most the cost of the kill.
        uploaded = seeder.ok("GET", path)["uploaded"]
        assert uploaded <= metainfo.total_length + SLACK
    finally:
        if leecher is not None:
            leecher.stop()
        assert seeder.stop() == 0
