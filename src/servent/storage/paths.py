"""Where each payload file goes on disk, and proof that it stays inside the download folder.

Layout: ``FileEntry.path`` is already relative to the download folder
(``(name,)`` for a single-file torrent, ``(name, ...)`` otherwise).  A file
that is not yet complete is named ``<file>.part``; storage renames it to its
real name the moment all of its pieces are verified, so a file with its
real name is always complete.

Paths were already validated by the metainfo parser; here they are checked
again against the disk: every existing component is resolved (following
symlinks already present) and the result must remain inside the resolved
download folder.  The file itself must not be a symlink.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from servent.errors import UnsafeStoragePathError

PART_SUFFIX = ".part"


class NamedFile(Protocol):
    @property
    def path(self) -> tuple[str, ...]: ...

    @property
    def pad(self) -> bool: ...

    @property
    def length(self) -> int: ...


def relative_paths(files: Sequence[NamedFile]) -> list[tuple[str, ...]]:
    """Path of each file relative to the download folder (pads included, unused)."""
    return [tuple(f.path) for f in files]


def _check_component(part: str) -> None:
    if part in ("", ".", "..") or "/" in part or "\x00" in part or os.sep in part:
        raise UnsafeStoragePathError(f"unsafe path component {part!r}")


def safe_path(root: Path, relative: tuple[str, ...]) -> Path:
    """``root/relative`` after checking it cannot escape ``root`` (root must be resolved)."""
    if not relative:
        raise UnsafeStoragePathError("empty file path")
    for part in relative:
        _check_component(part)
    target = root.joinpath(*relative)
    ensure_inside(root, target)
    return target


def ensure_inside(root: Path, target: Path) -> None:
    """Raise unless ``target`` (and any symlinked parents) resolve inside ``root``."""
    resolved_parent = target.parent.resolve()
    if not resolved_parent.is_relative_to(root):
        raise UnsafeStoragePathError(f"{target} resolves outside the download folder {root}")
    if target.is_symlink():
        raise UnsafeStoragePathError(f"{target} is a symlink; refusing to write through it")


def part_path(final: Path) -> Path:
    return final.with_name(final.name + PART_SUFFIX)
