"""``servent add MAGNET_OR_TORRENT``: add a download to the running daemon."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser("add", help="add a magnet link or .torrent file to the daemon")
    parser.add_argument("source", metavar="MAGNET_OR_TORRENT")
    parser.add_argument("--save-path", metavar="DIR", help="download folder for this torrent")
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from servent.cli.api_client import client_from_args, print_json, torrent_line

    client = client_from_args(args)
    query = ""
    if args.save_path:
        from urllib.parse import quote

        query = "?save_path=" + quote(str(Path(args.save_path).expanduser().resolve()))
    if args.source.lower().startswith("magnet:"):
        body: dict[str, str] = {"magnet": args.source}
        if args.save_path:
            body["save_path"] = str(Path(args.save_path).expanduser().resolve())
        result = client.request("POST", "/api/torrents", body)
    else:
        data = Path(args.source).expanduser().read_bytes()
        result = client.request(
            "POST", "/api/torrents" + query, raw=data, content_type="application/x-bittorrent"
        )
    if args.json:
        print_json(result)
    else:
        print(torrent_line(result))
    return 0
