"""Hypothesis: whatever the folder holds, deletion removes only files servent created.

Random user files and random torrent files share a small name space (so they
collide in folders and names); some torrent files pre-exist as the user's,
some places are symlinks.  After ``delete_created_files`` every entry that
was not a created file is still there with the same bytes or link target.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.codec.metainfo import FileEntry
from servent.storage.payload_removal import delete_created_files, existing_file_indexes

names = st.sampled_from(["a", "a.part", "b", "c.bin"])
paths = st.lists(names, min_size=1, max_size=3).map(tuple)


def _snapshot(root: Path) -> dict[str, bytes | str]:
    found: dict[str, bytes | str] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = "link -> " + os.readlink(path)
            elif path.is_file():
                found[key] = path.read_bytes()
    return found


def _place(root: Path, parts: tuple[str, ...], data: bytes, link: bool) -> bool:
    target = root.joinpath(*parts)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if os.path.lexists(target):
            return False
        if link:
            os.symlink(root.parent / "outside" / "keep.txt", target)
        else:
            target.write_bytes(data)
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        return False
    return True


@given(
    user=st.lists(st.tuples(paths, st.binary(min_size=1, max_size=8), st.booleans()), max_size=8),
    torrent=st.lists(paths, min_size=1, max_size=6, unique=True),
)
@settings(max_examples=150, deadline=None)
def test_only_created_files_are_ever_deleted(
    user: list[tuple[tuple[str, ...], bytes, bool]], torrent: list[tuple[str, ...]]
) -> None:
    base = Path(tempfile.mkdtemp(prefix="servent-removal-"))
    try:
        (base / "outside").mkdir()
        (base / "outside" / "keep.txt").write_bytes(b"outside the download folder")
        root = base / "downloads"
        root.mkdir()
        for parts, data, link in user:
            _place(root, parts, data, link)
        files = [FileEntry(parts, 1, i) for i, parts in enumerate(torrent)]
        existing = existing_file_indexes(root, files)
        created = [i for i in range(len(files)) if i not in existing]
        users_before = _snapshot(base)
        for i in created:  # servent downloads what was not there
            _place(root, files[i].path, b"downloaded", False)
        removal = delete_created_files(root, files, created)
        after = _snapshot(base)
        for key, value in users_before.items():
            assert after.get(key) == value, key
        for path in removal.deleted:
            assert path.relative_to(root).parts in {files[i].path for i in created} | {
                (*files[i].path[:-1], files[i].path[-1] + ".part") for i in created
            }
    finally:
        shutil.rmtree(base)
