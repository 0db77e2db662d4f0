"""``servent list``: the daemon's torrents, one line each."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser("list", help="list the daemon's torrents")
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from servent.cli.api_client import client_from_args, print_json, torrent_line

    torrents = client_from_args(args).request("GET", "/api/torrents")
    if args.json:
        print_json(torrents)
    elif not torrents:
        print("no torrents")
    else:
        for torrent in torrents:
            print(torrent_line(torrent))
    return 0
