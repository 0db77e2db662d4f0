"""The daemon's files in the data directory: the API token and ``daemon.json``.

Clients on the same machine find the API by reading ``daemon.json`` (address,
pid) and authenticate with the token in ``api-token``.  Both are readable by
the owner only (0600): whoever can read the data directory already owns the
node, everyone else (other users, web pages) cannot call the API.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

from servent.errors import DaemonError
from servent.node.private_files import private_directory, private_file

TOKEN_FILE = "api-token"
DAEMON_FILE = "daemon.json"
LOCK_FILE = "daemon.lock"


def load_or_create_token(data_dir: Path, name: str = TOKEN_FILE) -> str:
    """The API token (or another secret ``name``), created (0600, never overwritten) once."""
    private_directory(data_dir)
    path = data_dir / name
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        private_file(path)
        return read_token(data_dir, name)
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return token


def read_token(data_dir: Path, name: str = TOKEN_FILE) -> str:
    path = data_dir / name
    try:
        token = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise DaemonError(f"cannot read the API token {path}: {exc}") from exc
    if not token:
        raise DaemonError(f"the API token file {path} is empty")
    return token


def _write_private(path: Path, data: bytes) -> None:
    """Write ``path`` (0600) atomically: temp file, fsync, rename."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise


def write_daemon_file(data_dir: Path, info: dict[str, Any]) -> None:
    _write_private(data_dir / DAEMON_FILE, json.dumps(info, indent=2).encode() + b"\n")


def read_daemon_file(data_dir: Path) -> dict[str, Any]:
    path = data_dir / DAEMON_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DaemonError(
            f"no node runs for {data_dir} (start it with: {start_command(data_dir)})"
        ) from None
    except (OSError, ValueError) as exc:
        raise DaemonError(f"cannot read {path}: {exc}") from exc
    if not isinstance(info, dict) or not isinstance(info.get("url"), str):
        raise DaemonError(f"{path} does not say where the daemon listens")
    return info


def start_command(data_dir: Path) -> str:
    """The README's command that starts a node for ``data_dir``."""
    from servent.node.config import default_data_dir

    if data_dir.expanduser().resolve() == default_data_dir().resolve():
        return "servent start"
    return f"servent start --data-dir {data_dir}"


def remove_daemon_file(data_dir: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (data_dir / DAEMON_FILE).unlink()
