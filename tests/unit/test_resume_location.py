"""Resume records of ``get``/``seed``: in the data directory, private, one set per destination."""

from __future__ import annotations

import stat
from pathlib import Path

from servent.storage.resume_location import LEGACY_RESUME_FOLDER, resume_store_for

KEY = "ab" * 20


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_records_are_private_and_kept_apart_per_destination(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = resume_store_for(data, tmp_path / "one", KEY)
    second = resume_store_for(data, tmp_path / "two", KEY)
    first.save(KEY, b"first")
    assert second.load(KEY) is None
    assert resume_store_for(data, tmp_path / "x" / ".." / "one", KEY).load(KEY) == b"first"
    for folder in (data, data / "resume", first.folder):
        assert _mode(folder) == 0o700, folder
    assert _mode(first.folder / f"{KEY}.resume") == 0o600
    assert not (tmp_path / "one").exists()  # nothing created in the destination


def test_a_record_left_in_the_destination_by_an_older_servent_is_moved(tmp_path: Path) -> None:
    destination = tmp_path / "down"
    legacy = destination / LEGACY_RESUME_FOLDER
    legacy.mkdir(parents=True)
    (legacy / f"{KEY}.resume").write_bytes(b"old record")
    store = resume_store_for(tmp_path / "data", destination, KEY)
    assert store.load(KEY) == b"old record"
    assert not legacy.exists()


def test_other_files_in_an_old_resume_folder_stay(tmp_path: Path) -> None:
    destination = tmp_path / "down"
    legacy = destination / LEGACY_RESUME_FOLDER
    legacy.mkdir(parents=True)
    (legacy / f"{KEY}.resume").write_bytes(b"old record")
    (legacy / "notes.txt").write_bytes(b"whatever the user keeps here")
    resume_store_for(tmp_path / "data", destination, KEY)
    assert sorted(p.name for p in legacy.iterdir()) == ["notes.txt"]
    assert (legacy / "notes.txt").read_bytes() == b"whatever the user keeps here"
