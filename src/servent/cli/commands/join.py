"""``servent join KEY DIR``: follow a synced share (docs/sync.md) in a folder."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser("join", help="join a synced share by its key into a folder")
    parser.add_argument(
        "key", metavar="KEY", help="a read-write (srw-...) or read-only (sro-...) key"
    )
    parser.add_argument("dir", metavar="DIR", help="the folder to keep in sync (made if missing)")
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from servent.cli.api_client import client_from_args, print_json

    path = str(Path(args.dir).expanduser().resolve())
    joined = client_from_args(args).request(
        "POST", "/api/sync/join", {"key": args.key, "path": path}
    )
    if args.json:
        print_json(joined)
    else:
        print(f"joined share {joined['id']} as {joined['role']} in {joined['path']}")
    return 0
