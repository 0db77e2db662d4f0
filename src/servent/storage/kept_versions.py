"""Keep a copy of a file before servent writes over it: nothing of the user's is lost.

A download may find a file already at one of its paths that does not match
the torrent (the user's own file of the same name, or a finished download
edited since). The torrent's pieces will be written into it, so the file as
it was is first copied to ``<download folder>/.servent-versions/`` under its
relative path, with the time in its name (``report~20261207-013000.pdf``, as
Syncthing names its versions). A copy, not a move: pieces of it that do
verify are still used.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from servent.storage.file_pool import storage_error
from servent.storage.paths import ensure_inside

__all__ = ["VERSIONS_FOLDER", "keep_version"]

log = logging.getLogger(__name__)

VERSIONS_FOLDER = ".servent-versions"


def version_path(root: Path, path: Path, when: float) -> Path:
    """Where the copy of ``path`` (inside ``root``) taken at ``when`` goes."""
    relative = path.relative_to(root)
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(when))
    name = f"{path.stem}~{stamp}{path.suffix}"
    return root / VERSIONS_FOLDER / relative.parent / name


def keep_version(root: Path, path: Path, when: float | None = None) -> Path:
    """Copy ``path`` into the versions folder and return the copy's path.

    Raises a storage error when the copy cannot be made (a full disk, say):
    the download must not go on and overwrite the only copy.
    """
    target = version_path(root, path, time.time() if when is None else when)
    ensure_inside(root, target)
    serial = 1
    while target.exists():
        serial += 1
        target = target.with_name(f"{target.stem}.{serial}{target.suffix}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        ensure_inside(root, target)
        shutil.copy2(path, target, follow_symlinks=False)
    except OSError as exc:
        raise storage_error(exc, "keeping a copy of", path) from exc
    log.warning("%s did not match the torrent; its old content is kept in %s", path, target)
    return target
