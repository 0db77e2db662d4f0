"""``servent block ID``: drop every message (direct or broadcast) from a node."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser("block", help="drop every message from a node")
    parser.add_argument("node_id", metavar="ID")
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from servent.cli.api_client import client_from_args, print_json
    from servent.codec.node_id import parse_node_id

    parse_node_id(args.node_id)
    result = client_from_args(args).request("POST", "/api/blocked", {"id": args.node_id})
    print_json(result) if args.json else print(f"blocked {args.node_id.strip().lower()}")
    return 0
