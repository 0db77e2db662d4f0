"""Deleting a torrent's payload without ever touching what the user owns.

Why a module of its own: deletion is the one storage path that destroys
data, so its rules sit in one place and are tested byte for byte.

* Only files servent created are candidates: the caller passes their indexes
  (files that already existed when the torrent was added are never listed).
* A file is deleted only at its exact place inside the torrent's folder:
  every folder on the way must be a real folder (a symlink ends the walk)
  and the file itself a regular file, never a symlink.
* Folders are removed only when empty, only below the torrent's folder, and
  only on the way to a deleted file; the torrent's folder itself stays.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from servent.storage.paths import PART_SUFFIX, NamedFile

__all__ = ["PayloadRemoval", "delete_created_files", "existing_file_indexes"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class PayloadRemoval:
    """What a deletion did: files removed and files it refused to touch (with why)."""

    deleted: list[Path] = field(default_factory=list)
    kept: list[tuple[Path, str]] = field(default_factory=list)


def _safe_parts(parts: Sequence[str]) -> bool:
    return bool(parts) and all(
        part not in ("", ".", "..") and not {"/", os.sep, "\x00"} & set(part) for part in parts
    )


def _real_folder(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _walk_folders(root: Path, parts: Sequence[str]) -> list[Path] | None:
    """The folders from ``root`` down to the file's parent, or None if one is not a real folder."""
    folders: list[Path] = []
    current = root
    for part in parts[:-1]:
        current = current / part
        if not _real_folder(current):
            return None
        folders.append(current)
    return folders


def existing_file_indexes(save_path: Path, files: Sequence[NamedFile]) -> set[int]:
    """Indexes of the files that already exist (complete or ``.part``) under ``save_path``.

    Anything that exists at a file's place, even a symlink or a folder, counts:
    it is not servent's to delete later."""
    found: set[int] = set()
    for index, entry in enumerate(files):
        if entry.pad or not _safe_parts(entry.path):
            continue
        target = save_path.joinpath(*entry.path)
        for candidate in (target, target.with_name(target.name + PART_SUFFIX)):
            if os.path.lexists(candidate):
                found.add(index)
    return found


def delete_created_files(
    save_path: Path, files: Sequence[NamedFile], created: Iterable[int]
) -> PayloadRemoval:
    """Delete the files servent created (complete or ``.part``) and their then-empty folders."""
    result = PayloadRemoval()
    root = save_path.resolve()  # the folder as storage wrote into it
    if not root.is_dir():
        return result
    emptied: set[Path] = set()
    for index in sorted(set(created)):
        if not 0 <= index < len(files) or files[index].pad:
            continue
        parts = tuple(files[index].path)
        if not _safe_parts(parts):
            continue
        folders = _walk_folders(root, parts)
        target = root.joinpath(*parts)
        if folders is None:
            result.kept.append((target, "a folder on its way is missing or a symlink"))
            continue
        for candidate in (target, target.with_name(target.name + PART_SUFFIX)):
            _delete_regular_file(candidate, result)
        emptied.update(folders)
    for folder in sorted(emptied, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()  # only succeeds when empty: the user's files keep it alive
    return result


def _delete_regular_file(path: Path, result: PayloadRemoval) -> None:
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        result.kept.append((path, f"cannot inspect: {exc.strerror or exc}"))
        return
    if not stat.S_ISREG(mode):
        result.kept.append((path, "not a regular file (symlink or folder)"))
        return
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as exc:
        result.kept.append((path, f"cannot delete: {exc.strerror or exc}"))
        return
    log.info("deleted %s", path)
    result.deleted.append(path)
