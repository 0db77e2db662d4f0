"""Running the daemon: node + HTTP API until SIGTERM/SIGINT, then a clean shutdown.

Start-up order matters for clients: the node starts first, then the API
listens, and only then is ``daemon.json`` written, so a client that finds the
file finds a daemon that answers.  One daemon per data directory is enforced
with an ``flock`` on ``daemon.lock`` (released by the kernel even after kill -9).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from aiohttp import web

from servent import __version__
from servent.daemon.api import STOPPING_KEY, build_app
from servent.daemon.files import (
    LOCK_FILE,
    load_or_create_token,
    remove_daemon_file,
    write_daemon_file,
)
from servent.errors import DaemonError
from servent.node.config import Config
from servent.node.node import Node

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT = 10.0


def _lock_data_dir(data_dir: Path) -> IO[str]:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = (data_dir / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DaemonError(f"another daemon already runs for {data_dir}") from None
    return handle


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
                runner = web.AppRunner(app, handle_signals=False, access_log=None)
                await runner.setup()
                try:
                    site = web.TCPSite(runner, config.api_host, config.api_port)
                    await site.start()
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
                    log.info("web UI and API at %s", url)
                    on_ready(url, token)
                    await stop.wait()
                    log.warning("servent daemon: shutting down")
                    app[STOPPING_KEY].set()
                finally:
                    remove_daemon_file(config.data_dir)
                    await asyncio.wait_for(runner.cleanup(), SHUTDOWN_TIMEOUT)
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(Exception):
                    loop.remove_signal_handler(sig)
    finally:
        lock.close()
