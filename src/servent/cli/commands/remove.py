"""``servent remove ID [--delete-data]``: forget a torrent in the running daemon."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser("remove", help="remove a torrent (id or unique id prefix)")
    parser.add_argument("id", metavar="ID")
    parser.add_argument(
        "--delete-data", action="store_true", help="also delete the downloaded files"
    )
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from servent.cli.api_client import client_from_args, print_json, resolve_id

    client = client_from_args(args)
    torrent_id = resolve_id(client, args.id)
    flag = "true" if args.delete_data else "false"
    result = client.request("DELETE", f"/api/torrents/{torrent_id}?delete_data={flag}")
    if args.json:
        print_json(result)
    else:
        print(f"removed {torrent_id}" + (" and its files" if args.delete_data else ""))
    return 0
