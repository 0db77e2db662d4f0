"""``servent shares``: the synced shares of the daemon, one line each."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser("shares", help="list synced shares (role, version, peers)")
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from servent.cli.api_client import client_from_args, print_json

    shares = client_from_args(args).request("GET", "/api/sync")
    if args.json:
        print_json(shares)
    elif not shares:
        print("no synced shares")
    else:
        for share in shares:
            print(
                f"{share['id']}  {share['role']:<10} v{share['version']:<4} "
                f"{share['peers']} peers  {share['state']}  {share['path']}"
            )
    return 0
