"""``servent stream MAGNET|ID|LIVEKEY``: an HTTP URL that plays a torrent's file while it
downloads, or a live broadcast from its live edge (``docs/live.md``).

The torrent is added to the daemon if it is not there yet; the URL (on the
daemon's API, carrying a token for that one file) serves any player with
``Range`` requests, and ``--player CMD`` starts the player on it.  The default
file is the largest media file.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from servent.cli.api_client import ApiClient


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser(
        "stream", help="play a torrent's file over HTTP while it downloads"
    )
    parser.add_argument(
        "source", metavar="MAGNET|ID|LIVEKEY", help="magnet, .torrent file, torrent id or live key"
    )
    parser.add_argument("--file", type=int, metavar="N", help="file index (default: largest media)")
    parser.add_argument("--player", metavar="CMD", help="start this player with the URL, e.g. mpv")
    parser.add_argument(
        "--peer",
        metavar="HOST:PORT",
        action="append",
        default=[],
        help="a peer to download from when adding (repeatable)",
    )
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def _torrent_id(client: ApiClient, args: argparse.Namespace) -> str:
    """Add a magnet or .torrent file (no-op when known), or resolve an id (prefix)."""
    from servent.cli.api_client import resolve_id
    from servent.cli.commands.add import _add

    source: str = args.source
    if source.lower().startswith("magnet:") or Path(source).expanduser().is_file():
        added = _add(client, argparse.Namespace(source=source, save_path=None, peer=args.peer))
        return str(added["id"])
    return resolve_id(client, source)


def run(args: argparse.Namespace) -> int:
    from servent.cli.api_client import client_from_args, print_json

    client = client_from_args(args)
    answer: dict[str, Any]
    if args.source.strip().lower().startswith("live:"):  # a live key: join the broadcast
        answer = client.request("POST", "/api/live/watch", {"key": args.source})
        if args.json:
            print_json({"url": answer["url"], "id": answer["id"], "name": answer["name"]})
    else:
        torrent_id = _torrent_id(client, args)
        body: dict[str, Any] = {} if args.file is None else {"file": args.file}
        answer = client.request("POST", f"/api/torrents/{torrent_id}/stream", body)
        if args.json:
            print_json({"url": answer["url"], "file": answer["file"], "name": answer["name"]})
    if not args.json:
        print(answer["url"], flush=True)
    if args.player:
        return subprocess.run([*shlex.split(args.player), answer["url"]], check=False).returncode
    return 0
