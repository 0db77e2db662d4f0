"""``servent remove --delete-data`` against a real daemon: the user's files survive, byte for byte.

A shared folder is the user's and is never deleted; a download deletes only
the files servent downloaded, never the other files of the folder it went
into nor a file the user had put there first.  An empty, short or ambiguous
id prefix removes (pauses, resumes) nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from servent_cli import run_servent, servent

from daemon_process import Daemon, start_daemon

pytestmark = pytest.mark.e2e

DEADLINE = 60.0


@pytest.fixture()
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    running = start_daemon(tmp_path / "data")
    yield running
    assert running.stop() == 0


def tree(root: Path) -> dict[str, bytes | str]:
    """Every file (bytes), folder and symlink under ``root``, links not followed."""
    found: dict[str, bytes | str] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = "link -> " + os.readlink(path)
            else:
                found[key] = "folder" if path.is_dir() else path.read_bytes()
    return found


def album(root: Path) -> Path:
    folder = root / "album"
    (folder / "cd2").mkdir(parents=True)
    (folder / "one.ogg").write_bytes(os.urandom(300_000))
    (folder / "cd2" / "two.ogg").write_bytes(os.urandom(70_000))
    (folder / "liner.txt").write_bytes(b"liner notes " * 300)
    return folder


async def cli(daemon: Daemon, *args: str | Path) -> tuple[int, list[str], list[str]]:
    return await run_servent(*args, "--data-dir", daemon.data_dir)


async def test_share_then_remove_delete_data_keeps_every_byte(
    daemon: Daemon, tmp_path: Path
) -> None:
    folder = album(tmp_path / "Music")
    (folder / "private.txt").write_bytes(b"shared, but still mine")
    os.symlink(tmp_path / "elsewhere", folder / "link")
    before = tree(tmp_path / "Music")
    code, out, err = await cli(daemon, "share", folder)
    assert code == 0, err
    (listed,) = daemon.ok("GET", "/api/torrents")
    code, out, err = await cli(daemon, "remove", listed["id"][:8], "--delete-data")
    assert code == 0, err
    assert "nothing deleted" in out[0] and "before servent" in out[0], out
    assert daemon.ok("GET", "/api/torrents") == []
    assert tree(tmp_path / "Music") == before


async def test_api_delete_with_data_on_a_share_says_data_was_kept(
    daemon: Daemon, tmp_path: Path
) -> None:
    folder = album(tmp_path / "Photos")
    before = tree(tmp_path / "Photos")
    shared = daemon.ok("POST", "/api/shares", {"path": str(folder)})
    answer = daemon.ok("DELETE", f"/api/torrents/{shared['id']}?delete_data=1")
    assert answer["removed"] == shared["id"]
    assert answer["data_deleted"] is False
    assert "nothing deleted" in answer["reason"]
    assert tree(tmp_path / "Photos") == before


async def test_download_then_remove_deletes_only_the_downloaded_files(
    daemon: Daemon, tmp_path: Path
) -> None:
    source = album(tmp_path / "seed")
    expected = tree(source)
    downloads = tmp_path / "Downloads"
    (downloads / "album").mkdir(parents=True)
    (downloads / "bank.csv").write_bytes(b"2026-01-01,42.00\n" * 100)
    (downloads / "album" / "my-review.txt").write_bytes(b"five stars")  # beside the payload
    (downloads / "album" / "liner.txt").write_bytes((source / "liner.txt").read_bytes())
    os.symlink(source / "one.ogg", downloads / "shortcut.ogg")
    users = tree(downloads)
    async with servent("seed", source, "--host", "127.0.0.1") as seeder:
        magnet = (await seeder.wait_line(r"^magnet:\?.*$")).group(0)
        code, out, err = await cli(daemon, "add", magnet, "--save-path", downloads, "--json")
        assert code == 0, err
        torrent_id = json.loads("\n".join(out))["id"]
        deadline = time.monotonic() + DEADLINE
        while daemon.ok("GET", f"/api/torrents/{torrent_id}")["progress"] < 1.0:
            assert time.monotonic() < deadline, "the download did not finish"
            await asyncio.sleep(0.1)  # polling another process's state, bounded
    downloaded = tree(downloads / "album")
    assert {key: downloaded[key] for key in expected} == expected
    code, out, err = await cli(daemon, "remove", torrent_id[:6], "--delete-data")
    assert code == 0, err
    assert "the 2 file(s) it downloaded" in out[0], out
    assert tree(downloads) == users  # bank.csv, my-review.txt, the pre-filled liner.txt, the link
    assert tree(source) == expected


async def test_empty_short_or_ambiguous_ids_change_nothing(daemon: Daemon, tmp_path: Path) -> None:
    first = daemon.ok("POST", "/api/shares", {"path": str(album(tmp_path / "a"))})
    second = daemon.ok("POST", "/api/shares", {"path": str(album(tmp_path / "b"))})
    for args, needle in [
        (("remove", "", "--delete-data"), "no torrent id given"),
        (("remove", "  "), "no torrent id given"),
        (("pause", first["id"][:3]), "at least 4 hex characters"),
        (("resume", ""), "no torrent id given"),
        (("remove", "nothex", "--delete-data"), "not a torrent id prefix"),
        (("pause", "0" * 39 + "g"), "not a torrent id prefix"),
    ]:
        code, out, err = await cli(daemon, *args)
        assert code == 1, (args, out, err)
        assert len(err) == 1 and needle in err[0], err  # one line, no traceback
        if needle != "not a torrent id prefix":
            assert first["id"][:12] in err[0], err  # the candidates are named
    states = {t["id"]: t["paused"] for t in daemon.ok("GET", "/api/torrents")}
    assert states == {first["id"]: False, second["id"]: False}
