"""``servent remove ID [--delete-data]``: forget a torrent in the running daemon."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser(
        "remove", help="remove a torrent (full id or a unique prefix of 4+ characters)"
    )
    parser.add_argument("id", metavar="ID", help="torrent id, or its first 4+ characters")
    parser.add_argument(
        "--delete-data",
        action="store_true",
        help="also delete the files servent downloaded (a shared folder and files that "
        "were there before are never deleted)",
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
        print(removal_message(torrent_id, args.delete_data, result))
    return 0


def removal_message(torrent_id: str, asked_to_delete: bool, result: dict[str, Any]) -> str:
    """What happened to the torrent and, when deletion was asked for, to its files."""
    if not asked_to_delete:
        return f"removed {torrent_id} (its files stay where they are)"
    if result.get("data_deleted"):
        line = (
            f"removed {torrent_id} and the {result.get('deleted_files', 0)} file(s) it downloaded"
        )
        kept = result.get("reason")
        return line + (f"; {kept}" if kept else "")
    reason = result.get("reason") or "nothing deleted"
    return f"removed {torrent_id} from servent; {reason}"
