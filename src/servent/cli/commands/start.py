"""``servent start`` (what plain ``servent`` runs): the README's first command.

It runs the node daemon with its web UI on the default data directory and
prints the UI's address, with the API token in the URL fragment (the
fragment never leaves the browser; the page keeps the token in local
storage).  When a node already runs for the data directory, it fails (exit 1)
and names that node's UI address.  Ctrl-C or SIGTERM stops the node
cleanly (torrents announce 'stopped', state is flushed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from servent.cli import event_loop

START_DEFAULTS: dict[str, object] = {"port_mapping": True}
"""What ``servent start`` does unless the file or a flag says otherwise."""


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


def run_start(args: argparse.Namespace) -> int:
    from servent.daemon.files import read_token
    from servent.daemon.server import NodeAlreadyRunningError, run_daemon, ui_address
    from servent.errors import DaemonError
    from servent.node.config import load_config, overrides_from_args

    config = load_config(args.config, overrides_from_args(args), defaults=START_DEFAULTS)
    try:
        event_loop.run(run_daemon(config, on_ready=print_ui_address))
    except NodeAlreadyRunningError as exc:
        if exc.url is None:
            raise
        try:  # the same link the running node printed: opening it logs in
            link = ui_address(exc.url, read_token(config.data_dir))
        except DaemonError:
            link = exc.url
        raise NodeAlreadyRunningError(exc.data_dir, exc.pid, link) from None
    return 0
