"""A synced folder on real files: a plan is carried out and no original is lost."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from servent.proto.sync_plan import Action, Change, plan_changes
from servent.storage.sync_folder import (
    VERSIONS_FOLDER,
    apply_changes,
    folder_listing,
    folder_signature,
)
from servent.storage.torrent_creator import scan_payload

NOW = 1_800_000_000.0  # 2027-01-15 08:00:00 UTC
STAMP = "20270115-080000"


def _write(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def test_a_new_version_is_applied_and_every_original_is_kept(tmp_path: Path) -> None:
    folder, staged = tmp_path / "folder", tmp_path / "staged"
    old = {"same.txt": b"same", "sub/changed.bin": os.urandom(3000), "gone.txt": b"bye",
           "edited.txt": b"share text"}  # fmt: skip
    _write(folder, old)
    previous = folder_listing(folder)
    (folder / "edited.txt").write_bytes(b"my local edit")
    (folder / "mine.txt").write_bytes(b"only mine")
    new = {"same.txt": b"same", "sub/changed.bin": os.urandom(4000), "added/new.txt": b"new",
           "edited.txt": b"share text v2"}  # fmt: skip
    _write(staged, new)
    changes = plan_changes(previous, folder_listing(folder), folder_listing(staged))
    assert {c.action for c in changes} == set(Action)
    apply_changes(folder, staged, changes, now=NOW)

    for name, data in new.items():
        assert (folder / name).read_bytes() == data
    assert not (folder / "gone.txt").exists()
    assert (folder / "mine.txt").read_bytes() == b"only mine"
    versions = folder / VERSIONS_FOLDER
    assert (versions / "sub" / f"changed.bin~{STAMP}").read_bytes() == old["sub/changed.bin"]
    assert (versions / f"gone.txt~{STAMP}").read_bytes() == b"bye"
    conflict = folder / f"edited.sync-conflict-{STAMP}.txt"
    assert conflict.read_bytes() == b"my local edit"
    # The kept versions (and a copy a crash cut short) are not part of the folder's listing.
    (folder / ".x.servent-sync-tmp").write_bytes(b"half")
    assert all(rel[0] != VERSIONS_FOLDER for rel in folder_listing(folder))
    assert (".x.servent-sync-tmp",) not in folder_listing(folder)
    assert all(rel[0] != VERSIONS_FOLDER for rel, _, _ in folder_signature(folder))
    _, found, _ = scan_payload(folder)
    assert all(source.path[0] != VERSIONS_FOLDER for source, _ in found)
    assert (".x.servent-sync-tmp",) not in {source.path for source, _ in found}


def test_a_second_replace_in_the_same_second_keeps_both(tmp_path: Path) -> None:
    folder, staged = tmp_path / "folder", tmp_path / "staged"
    for data in (b"one", b"two", b"three"):
        _write(folder, {"f": data})
        _write(staged, {"f": data + b"!"})
        apply_changes(folder, staged, [Change(Action.REPLACE, ("f",))], now=NOW)
    kept = sorted(p.read_bytes() for p in (folder / VERSIONS_FOLDER).iterdir())
    assert kept == [b"one", b"three", b"two"]


@pytest.mark.parametrize("rel", [("..", "x"), ("a/b",), (), (VERSIONS_FOLDER, "x"), ("",)])
def test_a_hostile_path_is_refused_before_anything_moves(
    tmp_path: Path, rel: tuple[str, ...]
) -> None:
    (tmp_path / "x").write_bytes(b"keep")
    with pytest.raises(ValueError):
        apply_changes(tmp_path, tmp_path, [Change(Action.ADD, rel)], now=NOW)
    assert (tmp_path / "x").read_bytes() == b"keep"
