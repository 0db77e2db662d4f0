"""``servent pause ID``: pause a torrent in the running daemon."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser(
        "pause", help="pause a torrent (full id or a unique prefix of 4+ characters)"
    )
    parser.add_argument("id", metavar="ID", help="torrent id, or its first 4+ characters")
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from servent.cli.api_client import client_from_args, print_json, resolve_id, torrent_line

    client = client_from_args(args)
    torrent_id = resolve_id(client, args.id)
    result = client.request("POST", f"/api/torrents/{torrent_id}/pause")
    if args.json:
        print_json(result)
    else:
        print(torrent_line(result))
    return 0
