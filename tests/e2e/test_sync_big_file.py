"""A one-byte change to a 256 MiB file in a synced share moves less than 1% of it.

The file is sparse (fast to make); its sealed form is not (AES-SIV output).
The figure is printed: run with ``-s`` to see the bytes moved.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from sync_lab import cli, share_state, start_swarm, wait_for

from daemon_process import Daemon

SIZE = 256 * 1024 * 1024


def _digest(path: Path) -> bytes | None:
    if not path.is_file() or path.stat().st_size != SIZE:
        return None
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.digest()


def _downloaded(daemon: Daemon) -> int:
    """Bytes the current version's torrent downloaded (the last one is gone by then)."""
    torrents = daemon.ok("GET", "/api/torrents")
    assert len(torrents) == 1, torrents
    return int(torrents[0]["downloaded"])


def _synced_to(reader: Daemon, version: int, folder: Path, digest: bytes) -> None:
    wait_for(
        lambda: (
            share_state(reader)["version"] >= version
            and share_state(reader)["state"] == "synced"
            and _digest(folder / "big.bin") == digest
        ),
        f"version {version} applied",
        lambda: share_state(reader),
        within=600,
    )


@pytest.mark.timeout(1500)
def test_a_one_byte_change_to_a_256_mib_file_moves_little(tmp_path: Path) -> None:
    owned, read = tmp_path / "owned", tmp_path / "read"
    owned.mkdir()
    big = owned / "big.bin"
    with big.open("wb") as handle:
        handle.truncate(SIZE)  # sparse: zeros, made at once
    (owned / "small.txt").write_bytes(b"a small file\n")
    daemons = start_swarm(tmp_path, ["entry", "owner", "reader"])  # a DHT of three
    _, owner, reader = daemons
    try:
        keys = cli(owner, "share", str(owned), "--sync")
        cli(reader, "join", keys["read_only_key"], str(read))
        first = _digest(big)
        assert first is not None
        wait_for(
            lambda: share_state(owner)["version"] >= 1, "published", lambda: share_state(owner),
            within=600,
        )  # fmt: skip
        _synced_to(reader, share_state(owner)["version"], read, first)
        assert _downloaded(reader) >= SIZE

        with big.open("r+b") as handle:  # one byte, in the middle
            handle.seek(SIZE // 2 + 12_345)
            handle.write(b"\x01")
        second = _digest(big)
        assert second is not None and second != first
        version = share_state(owner)["version"]
        wait_for(
            lambda: share_state(owner)["version"] > version, "published again",
            lambda: share_state(owner), within=600,
        )  # fmt: skip
        _synced_to(reader, share_state(owner)["version"], read, second)
        moved = _downloaded(reader)
        print(f"\none-byte change to a {SIZE} byte file: {moved} bytes moved "
              f"({100 * moved / SIZE:.3f}% of the file)")  # fmt: skip
        assert moved < SIZE // 100, moved
        assert (read / "small.txt").read_bytes() == b"a small file\n"
    finally:
        for daemon in daemons:
            daemon.stop()
