"""Renaming a 32 MiB file in a synced share moves less than 1% of it.

The renamed file keeps its stored name in the encrypted copy (``docs/sync.md``
section 6): only the new manifest crosses the network.  The figure is
printed: run with ``-s`` to see the bytes moved.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sync_lab import cli, contents, kept, share_state, start_swarm, wait_for

from daemon_process import Daemon

SIZE = 32 * 1024 * 1024


def _downloaded(daemon: Daemon) -> int:
    """Bytes the current version's torrent downloaded (the last one is gone by then)."""
    torrents = daemon.ok("GET", "/api/torrents")
    assert len(torrents) == 1, torrents
    return int(torrents[0]["downloaded"])


def _synced_to(reader: Daemon, owner: Daemon, folder: Path, expected: dict[str, bytes]) -> None:
    wait_for(
        lambda: (
            share_state(reader)["version"] >= share_state(owner)["version"] >= 1
            and share_state(reader)["state"] == "synced"
            and contents(folder) == expected
        ),
        "the reader has the owner's version",
        lambda: (share_state(owner), share_state(reader), sorted(contents(folder))),
        within=300,
    )


@pytest.mark.timeout(900)
def test_renaming_a_32_mib_file_moves_little(tmp_path: Path) -> None:
    owned, read = tmp_path / "owned", tmp_path / "read"
    owned.mkdir()
    big = os.urandom(SIZE)
    (owned / "before.bin").write_bytes(big)
    (owned / "small.txt").write_bytes(b"a small file\n")
    daemons = start_swarm(tmp_path, ["entry", "owner", "reader"])  # a DHT of three
    _, owner, reader = daemons
    try:
        keys = cli(owner, "share", str(owned), "--sync")
        cli(reader, "join", keys["read_only_key"], str(read))
        _synced_to(reader, owner, read, {"before.bin": big, "small.txt": b"a small file\n"})
        assert _downloaded(reader) >= SIZE
        version = share_state(owner)["version"]

        (owned / "sub").mkdir()
        (owned / "before.bin").rename(owned / "sub" / "after.bin")
        wait_for(
            lambda: share_state(owner)["version"] > version, "published again",
            lambda: share_state(owner), within=300,
        )  # fmt: skip
        _synced_to(reader, owner, read, {"sub/after.bin": big, "small.txt": b"a small file\n"})
        moved = _downloaded(reader)
        print(f"\nrename of a {SIZE} byte file: {moved} bytes moved "
              f"({100 * moved / SIZE:.3f}% of the file)")  # fmt: skip
        assert moved < SIZE // 100, moved
        assert not (read / "before.bin").exists()
        assert kept(read) == {"before.bin": [big]}  # the old name kept, as for any delete
        assert (owned / "sub" / "after.bin").read_bytes() == big
    finally:
        for daemon in daemons:
            daemon.stop()
