"""``servent daemon``: run the node with its HTTP API and web UI until stopped."""

from __future__ import annotations

import argparse
from pathlib import Path

from servent.cli import event_loop


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.node.config import add_config_arguments

    parser = subparsers.add_parser(
        "daemon",
        help="run the node with its HTTP API and web UI (127.0.0.1 by default)",
        description="Run the servent node in the foreground: torrents, DHT, shared folders, "
        "and an HTTP JSON API with a web UI. Stops cleanly on SIGTERM or Ctrl-C. "
        "Every setting can be given in a TOML file (--config) or as a flag.",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file")
    add_config_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from servent.daemon.server import run_daemon
    from servent.node.config import load_config, overrides_from_args

    config = load_config(args.config, overrides_from_args(args))
    event_loop.run(run_daemon(config))
    return 0
