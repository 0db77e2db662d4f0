"""Where the one-shot commands (``get``, ``seed``) keep resume records: the data directory.

Why not beside the payload: a ``.servent/`` folder in the user's
destination is clutter the user never asked for, and it travels with the
folder when the user copies or shares it.  Records live in
``DATA_DIR/resume/<digest of the destination folder>/<info-hash>.resume``:
keyed by info-hash as storage expects, and by destination so the same
torrent fetched into two folders keeps two records.  Folders are created
private (0700); the record files themselves are written 0600.

A record left by an older servent in ``DEST/.servent/`` is moved here the
first time, so a download started before the upgrade still resumes.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from pathlib import Path

from servent.storage.resume import FileResumeStore

__all__ = ["LEGACY_RESUME_FOLDER", "RESUME_ROOT", "private_folder", "resume_store_for"]

log = logging.getLogger(__name__)

RESUME_ROOT = "resume"
LEGACY_RESUME_FOLDER = ".servent"


def private_folder(path: Path) -> None:
    """Create ``path`` and any missing parents as 0700 (existing folders are left alone)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=0o700)


def resume_store_for(data_dir: Path, destination: Path, key: str) -> FileResumeStore:
    """The resume store for torrent ``key`` (hex info-hash) downloaded into ``destination``."""
    resolved = destination.expanduser().resolve()
    digest = hashlib.sha256(os.fsencode(resolved)).hexdigest()[:24]
    folder = data_dir / RESUME_ROOT / digest
    private_folder(folder)
    store = FileResumeStore(folder)
    _adopt_legacy_record(store, resolved, key)
    return store


def _adopt_legacy_record(store: FileResumeStore, destination: Path, key: str) -> None:
    """Move ``DEST/.servent/KEY.resume`` into ``store``; remove ``.servent/`` if then empty."""
    legacy_folder = destination / LEGACY_RESUME_FOLDER
    if not legacy_folder.is_dir():
        return
    legacy = FileResumeStore(legacy_folder)
    try:
        data = legacy.load(key)
    except OSError as exc:
        log.warning("cannot read the old resume record in %s: %s", legacy_folder, exc)
        return
    if data is None:
        return
    if store.load(key) is None:
        store.save(key, data)
    legacy.delete(key)
    log.info("moved the resume record of %s out of %s", key, legacy_folder)
    with contextlib.suppress(OSError):
        legacy_folder.rmdir()  # only when empty: anything else in it stays
