"""Four holders of one synced share on a loopback DHT (docs/sync.md; the proof of issue 16).

Owner, read-write, read-only and encrypted holder: changes by either writer
reach everyone within 30 s (pushed over the node channel, polled as the
fallback); a read-only edit stays local as a conflict copy; the encrypted
holder's storage holds no plaintext name or byte; with the owner gone the
others go on; a kill -9 during a sync loses nothing.  The keys are locked
with a password, and a wrong one is a clear error.
"""

from __future__ import annotations

import os
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
    run_cli,
    share_state,
    start_swarm,
    storage_bytes,
    wait_for,
)

from daemon_process import Daemon

#: The issue's bound on how long a change takes to reach every other holder.
ARRIVAL = 30.0
THETA = b"PLAINTEXT-written just before a kill -9\n"


def _arrives(folders: dict[Path, Daemon], expected: dict[str, bytes]) -> float:
    """Seconds until every folder shows ``expected`` (conflict copies aside)."""

    def seen() -> object:
        return [(share_state(d), sorted(plain(f))) for f, d in folders.items()]

    took = wait_for(lambda: all(plain(f) == expected for f in folders), "arrival", seen)
    print(f"a change reached {len(folders)} holder(s) in {took:.1f} s")
    return took


def _stored_version(holder: Daemon, version: int) -> None:
    """The encrypted holder has stored (and seeds) version ``version``."""
    wait_for(
        lambda: (
            share_state(holder)["version"] >= version and share_state(holder)["state"] == "synced"
        ),
        f"the encrypted holder stored version {version}",
        lambda: share_state(holder),
    )


@pytest.mark.timeout(1200)
def test_owner_writer_reader_and_encrypted_holder(tmp_path: Path) -> None:
    owned, written, read, stored = (tmp_path / n for n in ("owned", "written", "read", "stored"))
    (owned / "PLAINDIR-beta").mkdir(parents=True)
    originals = {
        "PLAINNAME-alpha.txt": random_text("PLAINTEXT-alpha:", 5_000),
        "PLAINDIR-beta/PLAINNAME-gamma.bin": random_text("PLAINTEXT-gamma:", 300_000),
        "PLAINNAME-delta.txt": random_text("PLAINTEXT-delta:", 200),
    }
    for name, data in originals.items():
        (owned / name).write_bytes(data)
    secret, wrong = tmp_path / "password", tmp_path / "wrong-password"
    secret.write_text("correct horse battery staple\n")
    wrong.write_text("correct horse battery stapler\n")
    every_text = dict(originals)  # every plaintext the share ever held
    daemons = start_swarm(tmp_path, ["encrypted", "owner", "writer", "reader"])
    encrypted, owner, writer, reader = daemons
    try:
        keys = cli(owner, "share", str(owned), "--sync", "--password-file", str(secret))
        assert [keys[k][:4] for k in ("read_write_key", "read_only_key", "encrypted_key")] == [
            "prw-", "pro-", "pen-",
        ]  # fmt: skip
        refused = run_cli(reader, "join", keys["read_only_key"], str(read), "--password-file",
                          str(wrong))  # fmt: skip
        assert refused.returncode == 1 and "wrong password" in refused.stderr, refused
        refused = run_cli(reader, "join", keys["read_only_key"], str(read))
        assert refused.returncode == 1 and "locked with a password" in refused.stderr, refused
        assert cli(reader, "shares") == []
        for daemon, key, folder, role in (
            (writer, "read_write_key", written, "read_write"),
            (reader, "read_only_key", read, "read_only"),
            (encrypted, "encrypted_key", stored, "encrypted"),
        ):
            joined = cli(daemon, "join", keys[key], str(folder), "--password-file", str(secret))
            assert joined == {"id": keys["id"], "role": role, "path": str(folder)}
        _arrives({written: writer, read: reader}, originals)
        _stored_version(encrypted, share_state(owner)["version"])

        # The owner changes a file: the others have it within 30 s.
        second = {**originals, "PLAINNAME-alpha.txt": random_text("PLAINTEXT-alpha2:", 6_000)}
        every_text["alpha2"] = second["PLAINNAME-alpha.txt"]
        (owned / "PLAINNAME-alpha.txt").write_bytes(second["PLAINNAME-alpha.txt"])
        took = _arrives({written: writer, read: reader}, second)
        assert took < ARRIVAL, took
        _stored_version(encrypted, share_state(owner)["version"])

        # The read-write holder adds one file and deletes another (a tombstone).
        third = {**second, "PLAINNAME-epsilon.txt": random_text("PLAINTEXT-epsilon:", 900)}
        del third["PLAINDIR-beta/PLAINNAME-gamma.bin"]
        every_text["epsilon"] = third["PLAINNAME-epsilon.txt"]
        (written / "PLAINNAME-epsilon.txt").write_bytes(third["PLAINNAME-epsilon.txt"])
        (written / "PLAINDIR-beta" / "PLAINNAME-gamma.bin").unlink()
        took = _arrives({owned: owner, read: reader}, third)
        assert took < ARRIVAL, took
        for folder in (owned, read):  # the deleted file is kept, never lost
            assert kept(folder)["PLAINDIR-beta/PLAINNAME-gamma.bin"] == [
                originals["PLAINDIR-beta/PLAINNAME-gamma.bin"]
            ]
        # The push goes out in the background after the publish: a poll may bring the
        # version first, so wait (bounded) for the push to be heard too.
        wait_for(
            lambda: sum(s["pushed"] for s in (share_state(owner), share_state(reader))) >= 1,
            "a push reached the owner or the reader",
            lambda: (share_state(owner), share_state(reader)),
        )

        # A read-only holder's edit is never published; the next version keeps it
        # as a conflict copy beside the share's content.
        own_edit = b"PLAINTEXT-the reader's own edit\n"
        (read / "PLAINNAME-delta.txt").write_bytes(own_edit)
        fourth = {**third, "PLAINNAME-zeta.txt": random_text("PLAINTEXT-zeta:", 700)}
        every_text["zeta"] = fourth["PLAINNAME-zeta.txt"]
        (owned / "PLAINNAME-zeta.txt").write_bytes(fourth["PLAINNAME-zeta.txt"])
        _arrives({written: writer, read: reader}, fourth)
        conflicts = [v for k, v in contents(read).items() if ".sync-conflict-" in k]
        assert conflicts == [own_edit]
        assert (owned / "PLAINNAME-delta.txt").read_bytes() == originals["PLAINNAME-delta.txt"]
        _stored_version(encrypted, share_state(owner)["version"])

        # The encrypted holder keeps the share, and no plaintext name or byte of it.
        _no_plaintext(stored, encrypted.data_dir, every_text, fourth)

        # The owner goes offline: the writer's changes still reach the others.
        owner.stop()
        fifth = {**fourth, "PLAINNAME-eta.txt": random_text("PLAINTEXT-eta:", 1_000)}
        every_text["eta"] = fifth["PLAINNAME-eta.txt"]
        (written / "PLAINNAME-eta.txt").write_bytes(fifth["PLAINNAME-eta.txt"])
        took = _arrives({read: reader}, fifth)
        assert took < ARRIVAL, took
        _stored_version(encrypted, share_state(writer)["version"])
        _no_plaintext(stored, encrypted.data_dir, every_text, fifth)

        # kill -9 of the reader during a sync, and of the writer right after an edit.
        bootstrap = "{}:{}".format(*encrypted.ok("GET", "/api/status")["dht_address"])
        reader = _killed_during_a_sync(tmp_path, written, read, reader, bootstrap, every_text)
        every_text["theta"] = THETA
        writer = _writer_killed_after_an_edit(tmp_path, written, read, writer, reader, bootstrap)
        _stored_version(encrypted, share_state(writer)["version"])
        _no_plaintext(stored, encrypted.data_dir, every_text, plain(written))
    finally:
        for daemon in (encrypted, owner, writer, reader):
            daemon.stop()


def _no_plaintext(
    stored: Path, data_dir: Path, texts: dict[str, bytes], current: dict[str, bytes]
) -> None:
    """Grep every file the encrypted holder keeps for every plaintext name and content."""
    files = storage_bytes(stored, data_dir)
    sealed = sum(len(data) for path, data in files if path.is_relative_to(stored))
    assert sealed > sum(len(t) for t in current.values())  # it does store the share
    needles = {"PLAINNAME", "PLAINDIR", "PLAINTEXT"}
    for text in texts.values():
        needles |= {text[:32].decode(), text[len(text) // 2 : len(text) // 2 + 32].decode()}
    for path, data in files:
        for needle in needles:
            assert needle not in str(path), (needle, path)
            assert needle.encode() not in data, (needle, path)


def _killed_during_a_sync(
    root: Path, written: Path, read: Path, reader: Daemon, bootstrap: str,
    texts: dict[str, bytes],
) -> Daemon:  # fmt: skip
    before = contents(read)
    big = random_text("PLAINTEXT-big:", 32 * 1024 * 1024)
    texts["big"] = big
    (written / "PLAINNAME-big.bin").write_bytes(big)
    (written / "PLAINNAME-alpha.txt").write_bytes(b"PLAINTEXT-alpha3\n")
    texts["alpha3"] = b"PLAINTEXT-alpha3\n"
    version = share_state(reader)["version"]
    wait_for(
        lambda: (
            share_state(reader)["state"].startswith("downloading")
            or share_state(reader)["version"] > version
        ),
        "the reader started syncing",
        lambda: share_state(reader),
    )
    reader.stop(signal.SIGKILL)
    reader = restart(root / "reader", bootstrap)
    expected = plain(written)
    _arrives({read: reader}, expected)
    # Every byte the reader had is in its folder, its kept versions or a conflict copy.
    now, versions = contents(read), kept(read)
    for name, data in before.items():
        assert now.get(name) == data or data in versions.get(name, []), name
    leftovers = [p for p in read.rglob("*") if p.name.endswith(".servent-sync-tmp")]
    assert leftovers == []
    return reader


def _writer_killed_after_an_edit(
    root: Path, written: Path, read: Path, writer: Daemon, reader: Daemon, bootstrap: str
) -> Daemon:
    edit = THETA
    (written / "PLAINNAME-theta.txt").write_bytes(edit)
    os.sync()
    writer.stop(signal.SIGKILL)
    assert (written / "PLAINNAME-theta.txt").read_bytes() == edit
    writer = restart(root / "writer", bootstrap)
    expected = plain(written)
    assert expected["PLAINNAME-theta.txt"] == edit
    _arrives({read: reader, written: writer}, expected)
    return writer
