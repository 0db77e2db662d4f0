"""Helpers for synced-share tests: daemons on a private loopback DHT, CLI calls, folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from daemon_process import Daemon, start_daemon

WAIT = 120.0
DHT_FLAGS = ("--dht-enabled", "true", "--dht-restrict-ips", "false")
VERSIONS = ".servent-versions"


def run_cli(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "servent", *args, "--json", "--data-dir", str(daemon.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def cli(daemon: Daemon, *args: str) -> Any:
    done = run_cli(daemon, *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def wait_for(
    check: Callable[[], bool], what: str, last: Callable[[], object], within: float = WAIT
) -> float:
    """Seconds until ``check`` held; fails after ``within``."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        if check():
            return time.monotonic() - start
        time.sleep(0.2)  # polling other processes and their files
    raise AssertionError(f"not within {within} s: {what}; last: {last()}")


def contents(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` but the kept versions, by relative path."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).parts[0] != VERSIONS
    }


def plain(folder: Path) -> dict[str, bytes]:
    """``contents`` without conflict copies."""
    return {k: v for k, v in contents(folder).items() if ".sync-conflict-" not in k}


def kept(folder: Path) -> dict[str, list[bytes]]:
    """The kept versions, by relative path without their timestamp."""
    out: dict[str, list[bytes]] = {}
    versions = folder / VERSIONS
    for p in sorted(versions.rglob("*")):
        if p.is_file():
            out.setdefault(str(p.relative_to(versions)).split("~")[0], []).append(p.read_bytes())
    return out


def start_swarm(root: Path, names: list[str]) -> list[Daemon]:
    """Daemons on one loopback DHT; the first is everyone's bootstrap node."""
    daemons: list[Daemon] = []
    try:
        first = start_daemon(root / names[0], *DHT_FLAGS, "--dht-bootstrap", "127.0.0.1:9")
        daemons.append(first)
        host, port = first.ok("GET", "/api/status")["dht_address"]
        for name in names[1:]:
            daemons.append(restart(root / name, f"{host}:{port}"))
        for daemon in daemons:
            wait_for(
                lambda d=daemon: (
                    d.ok("GET", "/api/status")["dht_nodes"]  # type: ignore[misc]
                    >= min(2, len(names) - 1)
                ),
                "DHT joined",
                lambda: None,
            )
    except BaseException:
        for daemon in daemons:
            daemon.stop()
        raise
    return daemons


def restart(data_dir: Path, bootstrap: str) -> Daemon:
    return start_daemon(data_dir, *DHT_FLAGS, "--dht-bootstrap", bootstrap)


def share_state(daemon: Daemon) -> dict[str, Any]:
    """The one synced share of ``daemon``, as ``servent shares`` lists it."""
    shares = daemon.ok("GET", "/api/sync")
    assert len(shares) == 1, shares
    return dict(shares[0])


def storage_bytes(*roots: Path) -> list[tuple[Path, bytes]]:
    """Every file under ``roots`` with its bytes: what a holder keeps on disk."""
    found = []
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                found.append((path, path.read_bytes()))
    return found


def random_text(label: str, size: int) -> bytes:
    """Recognisable content: a label, then random letters (never a false hit)."""
    return label.encode() + os.urandom(size).hex().encode()[:size]
