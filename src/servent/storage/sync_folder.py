"""A synced folder on disk: its listing, and carrying out a plan without losing a byte.

``docs/sync.md`` section 4: a file sync replaces or deletes is first moved to
``DIR/.servent-versions/<path>~<timestamp>``; a local edit that a new version
overrides is kept beside it as a conflict copy.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from servent.proto.sync_plan import Action, Change, RelPath

__all__ = [
    "TEMPORARY_SUFFIX",
    "VERSIONS_FOLDER",
    "apply_changes",
    "folder_listing",
    "folder_signature",
    "iter_files",
]

#: Where replaced and deleted files are kept; never part of a version.
VERSIONS_FOLDER = ".servent-versions"
_SKIPPED = frozenset({VERSIONS_FOLDER})
_READ_SIZE = 1 << 20
TEMPORARY_SUFFIX = ".servent-sync-tmp"


def iter_files(folder: Path) -> Iterator[tuple[RelPath, Path, os.stat_result]]:
    """Regular files under ``folder`` (symlinks and the versions folder left out)."""
    for base, dirs, names in os.walk(folder, followlinks=False):
        if Path(base) == folder:
            dirs[:] = [d for d in dirs if d not in _SKIPPED]
        dirs.sort()
        for name in sorted(names):
            if name.endswith(TEMPORARY_SUFFIX):  # a copy cut short by a crash
                continue
            full = Path(base) / name
            info = full.lstat()
            if stat.S_ISREG(info.st_mode):
                yield full.relative_to(folder).parts, full, info


def folder_signature(folder: Path) -> tuple[tuple[RelPath, int, int], ...]:
    """Path, size and modification time of every file: a cheap "did it change" test."""
    return tuple((rel, info.st_size, info.st_mtime_ns) for rel, _, info in iter_files(folder))


def _digest(path: Path) -> bytes:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_SIZE):
            digest.update(chunk)
    return digest.digest()


def folder_listing(folder: Path) -> dict[RelPath, bytes]:
    """Path -> SHA-256 of content for every file in the folder."""
    return {rel: _digest(full) for rel, full, _ in iter_files(folder)}


def _stamp(now: float) -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime(now))


def _free(path: Path) -> Path:
    """``path``, or ``path`` with a counter when something is there already."""
    candidate, counter = path, 1
    while candidate.exists() or candidate.is_symlink():
        candidate = path.with_name(f"{path.name}.{counter}")
        counter += 1
    return candidate


def _keep_version(folder: Path, rel: RelPath, now: float) -> None:
    """Move the current file at ``rel`` into the versions folder."""
    kept = folder.joinpath(VERSIONS_FOLDER, *rel)
    kept = _free(kept.with_name(f"{kept.name}~{_stamp(now)}"))
    kept.parent.mkdir(parents=True, exist_ok=True)
    os.replace(folder.joinpath(*rel), kept)


def _keep_conflict(folder: Path, rel: RelPath, now: float) -> None:
    """Move a locally edited file aside, beside itself, as a conflict copy."""
    path = folder.joinpath(*rel)
    copy = _free(path.with_name(f"{path.stem}.sync-conflict-{_stamp(now)}{path.suffix}"))
    os.replace(path, copy)


#: Writes the new content of a path into the temporary file given.
Producer = Callable[[RelPath, Path], None]


def _produced(produce: Producer, rel: RelPath, target: Path) -> Path:
    """Write ``rel`` beside ``target`` into a temporary file (a crash leaves no half file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}{TEMPORARY_SUFFIX}")
    try:
        produce(rel, temporary)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _copier(staged: Path) -> Producer:
    def copy(rel: RelPath, temporary: Path) -> None:
        shutil.copyfile(staged.joinpath(*rel), temporary)

    return copy


def apply_changes(
    folder: Path, staged: Path | Producer, changes: Iterable[Change], now: float | None = None
) -> None:
    """Make ``folder`` show the new version (files at ``staged``, or written by it).

    Old files are kept; a file that cannot be produced stops the run before
    its original is moved.
    """
    when = time.time() if now is None else now
    produce = _copier(staged) if isinstance(staged, Path) else staged
    changes = list(changes)
    for change in changes:
        _check_relative(change.path)
    for change in changes:
        target = folder.joinpath(*change.path)
        # The new content is complete before the old file is moved aside.
        ready = None if change.action is Action.DELETE else _produced(produce, change.path, target)
        if change.action is Action.REPLACE or change.action is Action.DELETE:
            _keep_version(folder, change.path, when)
        elif change.action is Action.CONFLICT:
            _keep_conflict(folder, change.path, when)
        if ready is not None:
            os.replace(ready, target)


def _check_relative(rel: RelPath) -> None:
    """A path from a version stays inside the folder and out of the versions folder."""
    if not rel or any(p in ("", ".", "..") or "/" in p or "\\" in p for p in rel):
        raise ValueError(f"unsafe path in a version: {rel!r}")
    if rel[0] == VERSIONS_FOLDER:
        raise ValueError(f"a version may not write into {VERSIONS_FOLDER}: {rel!r}")
