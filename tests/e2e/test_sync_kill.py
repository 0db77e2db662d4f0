"""kill -9 of the owner and of the encrypted holder during a sync loses nothing.

(The reader and the read-write holder are killed in ``test_sync_roles.py``.)
After each kill: the killed holder's folder, every other holder's folder and
the encrypted holder's stored copy are intact; after a restart the share
converges, and the encrypted holder's copy is valid: a member joining while
only the encrypted holder is up gets every byte of the share from it.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from sync_lab import (
    cli,
    contents,
    kept,
    plain,
    random_text,
    restart,
    share_state,
    start_swarm,
    wait_for,
)

from daemon_process import Daemon

BIG = 32 * 1024 * 1024


def _state(daemon: Daemon) -> str:
    return str(share_state(daemon)["state"])


def _follows(folders: dict[Path, Daemon], expected: dict[str, bytes], within: float = 300) -> None:
    wait_for(
        lambda: all(plain(f) == expected for f in folders),
        "the members have the owner's folder",
        lambda: [(share_state(d), sorted(plain(f))) for f, d in folders.items()],
        within=within,
    )


def _stored(holder: Daemon, owner: Daemon) -> None:
    """The encrypted holder has stored the owner's current version."""
    wait_for(
        lambda: (
            share_state(holder)["version"] >= share_state(owner)["version"]
            and _state(holder) == "synced"
        ),
        "the encrypted holder stored the owner's version",
        lambda: (share_state(owner), share_state(holder)),
        within=300,
    )


def _nothing_lost(folder: Path, before: dict[str, bytes]) -> None:
    """Every byte a folder had is in it, in its kept versions or in a conflict copy."""
    now, versions = contents(folder), kept(folder)
    conflicts = [v for k, v in now.items() if ".sync-conflict-" in k]
    for name, data in before.items():
        assert now.get(name) == data or data in versions.get(name, []) or data in conflicts, name
    assert [p for p in folder.rglob("*") if p.name.endswith(".servent-sync-tmp")] == []


def _killed_when(daemon: Daemon, started: object, what: str) -> str:
    """kill -9 ``daemon`` as soon as ``started()`` holds; the state it was killed in."""
    wait_for(started, what, lambda: share_state(daemon), within=300)  # type: ignore[arg-type]
    state = _state(daemon)
    daemon.stop(signal.SIGKILL)
    print(f"\nkilled in state {state!r}")
    return state


@pytest.mark.timeout(1500)
def test_kill_9_of_the_owner_and_the_encrypted_holder_loses_nothing(tmp_path: Path) -> None:
    owned, read, stored, late = (tmp_path / n for n in ("owned", "read", "stored", "late-folder"))
    owned.mkdir()
    originals = {
        "alpha.txt": random_text("alpha:", 5_000),
        "beta.bin": random_text("beta:", 300_000),
    }
    for name, data in originals.items():
        (owned / name).write_bytes(data)
    daemons = start_swarm(tmp_path, ["entry", "reader", "owner", "encrypted"])
    entry, reader, owner, encrypted = daemons
    try:
        keys = cli(owner, "share", str(owned), "--sync")
        cli(reader, "join", keys["read_only_key"], str(read))
        cli(encrypted, "join", keys["encrypted_key"], str(stored))
        _follows({read: reader}, originals)
        _stored(encrypted, owner)
        bootstrap = "{}:{}".format(*entry.ok("GET", "/api/status")["dht_address"])

        # The owner is killed while it seals and serves a new version.
        second = {**originals, "big.bin": random_text("big:", BIG), "alpha.txt": b"alpha 2\n"}
        version, read_before = share_state(owner)["version"], contents(read)
        (owned / "big.bin").write_bytes(second["big.bin"])
        (owned / "alpha.txt").write_bytes(second["alpha.txt"])
        _killed_when(
            owner,
            lambda: _state(owner) == "sealing" or share_state(owner)["version"] > version,
            "the owner started a version",
        )
        assert plain(owned) == second  # the owner's own files, byte for byte
        _nothing_lost(read, read_before)
        owner = restart(tmp_path / "owner", bootstrap)
        daemons[2] = owner
        _follows({read: reader, owned: owner}, second)
        _nothing_lost(read, read_before)
        _stored(encrypted, owner)

        # The encrypted holder is killed while it downloads a new version.
        third = {**second, "gamma.bin": random_text("gamma:", BIG)}
        del third["beta.bin"]
        version, read_before = share_state(encrypted)["version"], contents(read)
        (owned / "gamma.bin").write_bytes(third["gamma.bin"])
        (owned / "beta.bin").unlink()
        _killed_when(
            encrypted,
            lambda: (
                _state(encrypted).startswith("downloading")
                or share_state(encrypted)["version"] > version
            ),
            "the encrypted holder started syncing",
        )
        assert plain(owned) == third
        _follows({read: reader}, third)
        _nothing_lost(read, read_before)
        encrypted = restart(tmp_path / "encrypted", bootstrap)
        daemons[3] = encrypted
        _stored(encrypted, owner)

        # Only the encrypted holder is up: a new member gets the share from its copy.
        for gone in (owner, reader):
            gone.stop()
        newcomer = restart(tmp_path / "late", bootstrap)
        daemons.append(newcomer)
        cli(newcomer, "join", keys["read_only_key"], str(late))
        _follows({late: newcomer}, third)
        assert plain(owned) == third and plain(read) == third
    finally:
        for daemon in daemons:
            daemon.stop()
