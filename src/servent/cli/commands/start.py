"""``servent start`` (what plain ``servent`` runs): the README's first command.

It runs the node daemon with its web UI on the default data directory and
prints the UI's address, with the API token in the URL fragment (the
fragment never leaves the browser; the page keeps the token in local
storage).  When a daemon already runs for the data directory, it prints that
daemon's address instead of failing.  Ctrl-C or SIGTERM stops the node
cleanly (torrents announce 'stopped', state is flushed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.node.config import add_config_arguments

    parser = subparsers.add_parser(
        "start",
        help="run the node with its web UI and print the UI's address (default command)",
        description="Start the servent node (torrents, DHT, shared folders) with its HTTP "
        "API and web UI on 127.0.0.1, and print the address to open in a browser. "
        "Runs in the foreground; Ctrl-C stops it. Takes every flag of 'servent daemon'.",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file")
    add_config_arguments(parser)
    parser.set_defaults(func=run_start)


def print_ui_address(url: str, token: str) -> None:
    """Tell the user where to go; the link carries the token so opening it logs in."""
    from servent.daemon.server import ui_address

    print(f"servent is running. Open the web UI: {ui_address(url, token)}", flush=True)
    print(f"(API at {url}/api; stop with Ctrl-C)", file=sys.stderr, flush=True)


def _running_daemon(data_dir: Path) -> tuple[str, str] | None:
    """The URL and token of a daemon that already serves ``data_dir``, if one answers."""
    from servent.cli.api_client import find_daemon

    daemon = find_daemon(data_dir)
    if daemon is None:
        return None
    return daemon.url, daemon.token


def run_start(args: argparse.Namespace) -> int:
    import asyncio

    from servent.daemon.server import run_daemon
    from servent.errors import DaemonError
    from servent.node.config import load_config, overrides_from_args

    config = load_config(args.config, overrides_from_args(args))
    running = _running_daemon(config.data_dir)
    if running is not None:
        print("servent: a node already runs for this data directory.", file=sys.stderr)
        print_ui_address(*running)
        return 0
    try:
        asyncio.run(run_daemon(config, on_ready=print_ui_address))
    except DaemonError:
        running = _running_daemon(config.data_dir)
        if running is None:
            raise
        print_ui_address(*running)
    return 0
