"""Synced shares between real daemons on a private loopback DHT (docs/sync.md).

An owner shares a folder with ``--sync``; a read-only member joins into an
empty folder and follows every change, keeping each original it replaces or
deletes in ``.servent-versions/`` and its own edit as a conflict copy;
``servent leave`` leaves the folder as it is.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemon_process import Daemon, start_daemon

WAIT = 120.0
DHT_FLAGS = ("--dht-enabled", "true", "--dht-restrict-ips", "false")
VERSIONS = ".servent-versions"
BIG = 4 * 1024 * 1024  # an unchanged file that later versions must not move again


def _cli(daemon: Daemon, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "servent", *args, "--json", "--data-dir", str(daemon.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _wait_for(check: Callable[[], bool], what: str, last: Callable[[], object]) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)  # polling other processes and their files
    raise AssertionError(f"not within {WAIT} s: {what}; last: {last()}")


def _contents(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but the kept versions, by relative path."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).parts[0] != VERSIONS
    }


def _downloaded(daemon: Daemon) -> int:
    """Bytes the one current version's torrent downloaded (once the last one is gone)."""
    answers: list[Any] = []

    def one_torrent() -> bool:
        answers.append(daemon.call("GET", "/api/torrents"))  # 404 while one is removed
        return answers[-1][0] == 200 and len(answers[-1][1]) == 1

    _wait_for(one_torrent, "one torrent listed", lambda: answers[-1])
    return int(answers[-1][1][0]["downloaded"])


def _kept(folder: Path) -> dict[str, bytes]:
    """The kept versions, by relative path without their timestamp."""
    versions = folder / VERSIONS
    return {
        str(p.relative_to(versions)).split("~")[0]: p.read_bytes()
        for p in sorted(versions.rglob("*"))
        if p.is_file()
    }


def _follows(member: Path, expected: dict[str, bytes], daemon: Daemon) -> None:
    def same() -> bool:
        return {
            k: v for k, v in _contents(member).items() if ".sync-conflict-" not in k
        } == expected

    def seen() -> object:
        return (
            daemon.ok("GET", "/api/sync"),
            daemon.ok("GET", "/api/torrents"),
            _contents(member).keys(),
        )

    _wait_for(same, "the member's folder shows the owner's", seen)


def test_a_read_only_member_follows_the_owner_and_loses_nothing(tmp_path: Path) -> None:
    owned, followed = tmp_path / "owned", tmp_path / "followed"
    (owned / "sub").mkdir(parents=True)
    originals = {
        "keep.txt": b"kept as is\n" * 100,
        "change.bin": os.urandom(300_000),
        "delete.txt": b"to be deleted\n",
        "sub/other.txt": b"other\n" * 50,
        "big.bin": os.urandom(BIG),
    }
    for name, data in originals.items():
        (owned / name).write_bytes(data)
    daemons: list[Daemon] = []
    try:
        entry = start_daemon(tmp_path / "d0", *DHT_FLAGS, "--dht-bootstrap", "127.0.0.1:9")
        daemons.append(entry)
        host, port = entry.ok("GET", "/api/status")["dht_address"]
        for name in ("owner", "member"):
            daemons.append(
                start_daemon(tmp_path / name, *DHT_FLAGS, "--dht-bootstrap", f"{host}:{port}")
            )
        owner, member = daemons[1], daemons[2]
        for daemon in daemons:
            _wait_for(
                lambda d=daemon: d.ok("GET", "/api/status")["dht_nodes"] >= 2,  # type: ignore[misc]
                "DHT joined",
                lambda: None,
            )

        keys = _cli(owner, "share", str(owned), "--sync")
        assert set(keys) == {"id", "read_write_key", "read_only_key", "encrypted_key"}
        assert keys["read_write_key"].startswith("srw-")
        assert keys["read_only_key"].startswith("sro-")
        joined = _cli(member, "join", keys["read_only_key"], str(followed))
        assert joined == {"id": keys["id"], "role": "read_only", "path": str(followed)}

        # Joining into an empty folder brings every byte.
        _follows(followed, originals, member)
        first = _downloaded(member)
        assert first >= sum(len(data) for data in originals.values())

        # The owner changes one file, adds one and deletes one.
        changed = os.urandom(310_000)
        (owned / "change.bin").write_bytes(changed)
        (owned / "added.txt").write_bytes(b"a new file\n")
        (owned / "delete.txt").unlink()
        second = {**originals, "change.bin": changed, "added.txt": b"a new file\n"}
        del second["delete.txt"]
        _follows(followed, second, member)
        # Only what changed crossed the network: not the unchanged 4 MiB file again.
        # (the first version's torrent is gone: what is listed is the second's download)
        moved = _downloaded(member)
        assert moved < BIG // 4, moved
        assert _kept(followed) == {
            "change.bin": originals["change.bin"],
            "delete.txt": originals["delete.txt"],
        }

        # A read-only member's own edit is never published nor lost.
        (followed / "keep.txt").write_bytes(b"my local edit\n")
        (owned / "sub" / "other.txt").write_bytes(b"other, second version\n")
        third = {**second, "sub/other.txt": b"other, second version\n"}
        _follows(followed, third, member)
        conflicts = [p for p in followed.iterdir() if ".sync-conflict-" in p.name]
        assert [p.read_bytes() for p in conflicts] == [b"my local edit\n"]
        assert conflicts[0].name.startswith("keep.sync-conflict-")
        assert (owned / "keep.txt").read_bytes() == originals["keep.txt"]  # not published

        listed = {s["id"]: s for s in _cli(member, "shares")}
        assert listed[keys["id"]]["role"] == "read_only"
        assert listed[keys["id"]]["version"] >= 3
        owned_list = _cli(owner, "shares")
        assert [(s["role"], s["path"]) for s in owned_list] == [("owner", str(owned))]

        # Leaving never touches the folder.
        assert _kept(followed)["sub/other.txt"] == originals["sub/other.txt"]
        before = (_contents(followed), _kept(followed))
        _cli(member, "leave", keys["id"])
        assert _cli(member, "shares") == []
        # A version published after leaving does not reach the folder.
        published = owned_list[0]["version"]
        (owned / "after-leaving.txt").write_bytes(b"not for the member\n")
        _wait_for(
            lambda: _cli(owner, "shares")[0]["version"] > published,
            "the owner published again",
            lambda: _cli(owner, "shares"),
        )
        assert (_contents(followed), _kept(followed)) == before
    finally:
        for daemon in daemons:
            daemon.stop()


def test_a_read_write_member_publishes_and_everyone_follows(tmp_path: Path) -> None:
    owned, written, read = tmp_path / "owned", tmp_path / "written", tmp_path / "read"
    owned.mkdir()
    originals = {"a.txt": b"first words\n" * 40, "b.bin": os.urandom(100_000)}
    for name, data in originals.items():
        (owned / name).write_bytes(data)
    daemons: list[Daemon] = []
    try:
        entry = start_daemon(tmp_path / "d0", *DHT_FLAGS, "--dht-bootstrap", "127.0.0.1:9")
        daemons.append(entry)
        host, port = entry.ok("GET", "/api/status")["dht_address"]
        for name in ("owner", "writer", "reader"):
            daemons.append(
                start_daemon(tmp_path / name, *DHT_FLAGS, "--dht-bootstrap", f"{host}:{port}")
            )
        owner, writer, reader = daemons[1:]
        for daemon in daemons:
            _wait_for(
                lambda d=daemon: d.ok("GET", "/api/status")["dht_nodes"] >= 2,  # type: ignore[misc]
                "DHT joined",
                lambda: None,
            )
        keys = _cli(owner, "share", str(owned), "--sync")
        assert _cli(writer, "join", keys["read_write_key"], str(written))["role"] == "read_write"
        assert _cli(reader, "join", keys["read_only_key"], str(read))["role"] == "read_only"
        _follows(written, originals, writer)
        _follows(read, originals, reader)

        # The read-write member changes a file and adds one: the owner and the reader follow.
        (written / "a.txt").write_bytes(b"the writer's words\n")
        (written / "w.txt").write_bytes(b"from the writer\n")
        second = {**originals, "a.txt": b"the writer's words\n", "w.txt": b"from the writer\n"}
        _follows(owned, second, owner)
        _follows(read, second, reader)
        assert _kept(owned) == {"a.txt": originals["a.txt"]}  # the owner's original is kept
        assert _kept(read) == {"a.txt": originals["a.txt"]}
        assert _contents(written) == second  # nothing was made a conflict copy

        # Both writers edit the same file at once: one edit wins, the other is a
        # conflict copy, and every folder ends up the same.
        (owned / "a.txt").write_bytes(b"the owner's edit\n")
        (written / "a.txt").write_bytes(b"the writer's edit\n")

        def converged() -> bool:
            folders = [_contents(f) for f in (owned, written, read)]
            return folders[0] == folders[1] == folders[2] and len(folders[0]) == 4

        _wait_for(
            converged,
            "three equal folders",
            lambda: [_contents(f).keys() for f in (owned, written, read)],
        )
        final = _contents(read)
        edits = {final["a.txt"]} | {v for k, v in final.items() if ".sync-conflict-" in k}
        assert edits == {b"the owner's edit\n", b"the writer's edit\n"}
    finally:
        for daemon in daemons:
            daemon.stop()
