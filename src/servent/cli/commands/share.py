"""``servent share DIR``: seed a folder from the running daemon and print its magnet link."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser(
        "share", help="share a folder (hybrid torrent, seeded, remembered); prints its magnet"
    )
    parser.add_argument("folder", metavar="DIR")
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from servent.cli.api_client import client_from_args, print_json

    client = client_from_args(args)
    folder = Path(args.folder).expanduser().resolve()
    result = client.request("POST", "/api/shares", {"path": str(folder)})
    if args.json:
        print_json(result)
    else:
        print(f"sharing {result['path']}")
        print(result["magnet"])
    return 0
