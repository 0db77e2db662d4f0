"""Deleting a torrent's payload: only files servent created, never the user's, never via symlinks.

Every test builds a real folder with the user's own files beside the
torrent's and checks afterwards that each of the user's bytes is still there.
"""

from __future__ import annotations

import os
from pathlib import Path

from servent.codec.metainfo import FileEntry
from servent.storage.payload_removal import delete_created_files, existing_file_indexes


def _entries(*paths: str, pad: int | None = None) -> list[FileEntry]:
    return [
        FileEntry(tuple(p.split("/")), length=10, offset=10 * i, pad=(i == pad))
        for i, p in enumerate(paths)
    ]


def _snapshot(root: Path) -> dict[str, bytes | str]:
    """Every entry under ``root``: file bytes, symlink targets, folders (links not followed)."""
    found: dict[str, bytes | str] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = "link -> " + os.readlink(path)
            elif path.is_dir():
                found[key] = "folder"
            else:
                found[key] = path.read_bytes()
    return found


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_only_the_created_files_go_and_the_users_files_in_the_same_folders_stay(
    tmp_path: Path,
) -> None:
    root = tmp_path / "Downloads"
    _write(root / "taxes-2025.pdf", b"user's own file" * 100)
    _write(root / "album" / "cover.jpg", b"the user's cover, added later")
    _write(root / "album" / "song.ogg", b"downloaded")
    _write(root / "album" / "cd2" / "track.ogg.part", b"half downloaded")
    _write(root / "album" / "liner.txt", b"was there before the torrent")
    user = {k: v for k, v in _snapshot(root).items() if "song" not in k and "track" not in k}
    files = _entries("album/song.ogg", "album/cd2/track.ogg", "album/liner.txt", "album/pad", pad=3)
    removal = delete_created_files(root, files, created=[0, 1])
    assert sorted(p.name for p in removal.deleted) == ["song.ogg", "track.ogg.part"]
    after = _snapshot(root)
    assert after == {k: v for k, v in user.items() if "cd2" not in k}  # empty cd2/ went
    assert removal.kept == []


def test_pre_existing_files_are_found_complete_or_part(tmp_path: Path) -> None:
    root = tmp_path / "d"
    _write(root / "t" / "a.bin", b"a")
    _write(root / "t" / "b.bin.part", b"b")
    (root / "t" / "c.bin").parent.mkdir(parents=True, exist_ok=True)
    os.symlink(tmp_path / "nowhere", root / "t" / "c.bin")  # even a dangling link counts
    files = _entries("t/a.bin", "t/b.bin", "t/c.bin", "t/d.bin", "t/pad", pad=4)
    assert existing_file_indexes(root, files) == {0, 1, 2}


def test_a_symlink_at_the_files_place_is_never_followed_or_removed(tmp_path: Path) -> None:
    outside = tmp_path / "home" / "precious.txt"
    _write(outside, b"the user's precious file")
    inside_target = tmp_path / "d" / "mine.txt"
    _write(inside_target, b"another user file inside the download folder")
    root = tmp_path / "d"
    (root / "t").mkdir()
    os.symlink(outside, root / "t" / "a.bin")
    os.symlink(inside_target, root / "t" / "b.bin")
    before = _snapshot(tmp_path)
    removal = delete_created_files(root, _entries("t/a.bin", "t/b.bin"), created=[0, 1])
    assert removal.deleted == []
    assert len(removal.kept) == 2
    assert _snapshot(tmp_path) == before


def test_a_symlinked_folder_on_the_way_stops_the_deletion(tmp_path: Path) -> None:
    music = tmp_path / "Music" / "album"
    _write(music / "song.ogg", b"the user's only copy")
    root = tmp_path / "d"
    root.mkdir()
    os.symlink(music, root / "album")
    before = _snapshot(tmp_path)
    removal = delete_created_files(root, _entries("album/song.ogg"), created=[0])
    assert removal.deleted == []
    assert "symlink" in removal.kept[0][1]
    assert _snapshot(tmp_path) == before


def test_unsafe_or_out_of_range_entries_are_ignored(tmp_path: Path) -> None:
    _write(tmp_path / "secret", b"outside the download folder")
    root = tmp_path / "d"
    _write(root / "x", b"user")
    before = _snapshot(tmp_path)
    files = [FileEntry(("..", "secret"), 6, 0), FileEntry((".", "x"), 4, 6)]
    removal = delete_created_files(root, files, created=[0, 1, 7, -1])
    assert removal.deleted == []
    assert _snapshot(tmp_path) == before


def test_a_missing_download_folder_deletes_nothing(tmp_path: Path) -> None:
    removal = delete_created_files(tmp_path / "gone", _entries("a"), created=[0])
    assert (removal.deleted, removal.kept) == ([], [])
