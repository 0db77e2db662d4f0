"""``servent leave ID``: stop syncing a share; the folder is left as it is."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser("leave", help="stop syncing a share (never deletes its folder)")
    parser.add_argument("id", metavar="ID", help="the share's id (servent shares)")
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from servent.cli.api_client import client_from_args, print_json

    left = client_from_args(args).request("DELETE", f"/api/sync/{args.id}")
    if args.json:
        print_json(left)
    else:
        print(f"left share {args.id}; its folder is untouched")
    return 0
