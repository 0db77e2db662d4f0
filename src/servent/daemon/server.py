"""Running the daemon: node + HTTP API until SIGTERM/SIGINT, then a clean shutdown.

Start-up order matters for clients: the node starts first, then the API
listens, and only then is ``daemon.json`` written, so a client that finds the
file finds a daemon that answers.  One daemon per data directory is enforced
with an ``flock`` on ``daemon.lock`` (released by the kernel even after kill -9),
which records the holder's pid and API address so that a second start can say
where the running node is.  Every request passes :mod:`.request_guard` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from servent import __version__
from servent.daemon.api import STOPPING_KEY
from servent.daemon.app import build_app
from servent.daemon.files import (
    LOCK_FILE,
    load_or_create_token,
    read_daemon_file,
    remove_daemon_file,
    write_daemon_file,
)
from servent.daemon.request_guard import request_guard
from servent.errors import DaemonError
from servent.node.config import Config
from servent.node.node import Node
from servent.node.private_files import private_directory, private_file

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 10.0


class NodeAlreadyRunningError(DaemonError):
    """Another process holds the data directory's lock; ``url`` is where its API
    and web UI answer (None while that node is still starting)."""

    def __init__(self, data_dir: Path, pid: int | None, url: str | None) -> None:
        self.data_dir = data_dir
        self.pid = pid
        self.url = url
        who = f" (pid {pid})" if pid else ""
        where = f"its web UI is at {url}" if url else "it is still starting"
        super().__init__(f"a node already runs for the data directory {data_dir}{who}: {where}")


def _lock_data_dir(data_dir: Path) -> IO[str]:
    """Take ``daemon.lock`` for good (the kernel drops it even after kill -9); it
    records this process and, once the API listens, its address."""
    private_directory(data_dir)
    private_file(data_dir / LOCK_FILE)  # 0600, or tightened if an older servent left it open
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    handle = os.fdopen(fd, "r+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        refusal = _already_running(data_dir, _read_lock_record(handle))
        handle.close()
        raise refusal from None
    _write_lock_record(handle, {"pid": os.getpid()})
    return handle


def _already_running(data_dir: Path, record: dict[str, Any]) -> NodeAlreadyRunningError:
    pid, url = record.get("pid"), record.get("url")
    if not isinstance(url, str):  # a node of an older version records no address
        with contextlib.suppress(DaemonError):
            url = read_daemon_file(data_dir).get("url")
    return NodeAlreadyRunningError(
        data_dir, pid if isinstance(pid, int) else None, url if isinstance(url, str) else None
    )


def _write_lock_record(handle: IO[str], record: dict[str, Any]) -> None:
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps(record))
    handle.flush()


def _read_lock_record(handle: IO[str]) -> dict[str, Any]:
    """What the holder of the lock recorded ({} while it is being rewritten)."""
    handle.seek(0)
    try:
        record = json.loads(handle.read(4096) or "{}")
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def api_bind_error(host: str, port: int, exc: OSError) -> str:
    """Say why the API cannot listen, and which setting changes it."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"the API port {port} on {host} is already in use (by another program, or a "
            "servent node with another data directory); choose another port with "
            "--api-port PORT (or api_port in the config file)"
        )
    if exc.errno == errno.EACCES:
        return (
            f"no permission to listen on the API port {port}; "
            "choose a port above 1023 with --api-port PORT"
        )
    return (
        f"cannot listen for the API on {host} port {port}: {exc.strerror or exc}; "
        "change --api-host or --api-port"
    )


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def ui_address(url: str, token: str) -> str:
    """The web UI's address with the token in the fragment (never sent over the network;
    the page keeps it in the browser's local storage)."""
    return f"{url}/#token={token}"


def announce_address(url: str, token: str) -> None:
    """Default ``on_ready``: tell the user where the UI is.  The token-bearing link is
    printed only to a terminal, never into a log file or pipe."""
    print(f"servent daemon: web UI and API at {url}", flush=True)
    if sys.stdout.isatty():
        print(f"open the web UI: {ui_address(url, token)}", flush=True)
    else:
        print("the API token is in the file 'api-token' of the data directory", flush=True)


async def run_daemon(
    config: Config,
    *,
    on_ready: Callable[[str, str], None] = announce_address,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT or until ``stop`` is set.

    ``on_ready(url, token)`` is called once the API answers and ``daemon.json``
    is written (the ``start`` command uses it to print or open the UI)."""
    lock = _lock_data_dir(config.data_dir)
    try:
        token = load_or_create_token(config.data_dir)
        stop = stop if stop is not None else asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            async with Node(config, client_version=__version__) as node:
                app = build_app(node, token)
                app.middlewares.insert(0, request_guard(config.api_host))
                runner = web.AppRunner(app, handle_signals=False, access_log=None)
                await runner.setup()
                try:
                    site = web.TCPSite(runner, config.api_host, config.api_port)
                    try:
                        await site.start()
                    except OSError as exc:
                        raise DaemonError(
                            api_bind_error(config.api_host, config.api_port, exc)
                        ) from None
                    server = site._server
                    assert server is not None
                    sockets = server.sockets  # type: ignore[attr-defined]
                    host, port = sockets[0].getsockname()[:2]
                    url = _url(host, port)
                    write_daemon_file(
                        config.data_dir,
                        {
                            "url": url,
                            "host": host,
                            "port": port,
                            "pid": os.getpid(),
                            "version": __version__,
                            "started_at": time.time(),
                            "data_dir": str(config.data_dir),
                        },
                    )
                    _write_lock_record(lock, {"pid": os.getpid(), "url": url})
                    log.info("web UI and API at %s", url)
                    on_ready(url, token)
                    await stop.wait()
                    log.info("stopping: torrents announce their stop, state is saved")
                    app[STOPPING_KEY].set()
                finally:
                    remove_daemon_file(config.data_dir)
                    await asyncio.wait_for(runner.cleanup(), SHUTDOWN_TIMEOUT)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
    finally:
        with contextlib.suppress(OSError):
            _write_lock_record(lock, {})
        lock.close()
