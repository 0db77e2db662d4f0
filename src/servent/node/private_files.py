"""The data directory and its state files are the owner's only: folder 0700, files 0600.

Why: the data directory holds the API token (whoever reads it controls the
node), the state database (what the user downloads and shares) and the
lock.  Created private from the start; a directory or file left readable by
others (made by an older servent, or by hand) is tightened once, with a log
line saying so.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ["private_directory", "private_file"]

log = logging.getLogger(__name__)

_OTHERS = 0o077


def private_directory(path: Path) -> None:
    """Create ``path`` (0700) or take group and other permissions away from it."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    _tighten(path, "directory")


def private_file(path: Path) -> None:
    """Create ``path`` empty (0600) if missing, else take group and other permissions away."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        _tighten(path, "file")
    else:
        os.close(fd)


def _tighten(path: Path, kind: str) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & _OTHERS:
        os.chmod(path, mode & ~_OTHERS)
        log.warning(
            "%s %s was open to other users (%o); made it private (%o)",
            kind,
            path,
            mode,
            mode & ~_OTHERS,
        )
