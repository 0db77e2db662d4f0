"""``servent search WORDS...``: find files (or, with ``--people``, nodes) by name.

Without ``--json`` results are printed as they arrive (name, size, sources
and a short ID for ``servent add``); ``--json`` prints one array of
``{"name", "infohash", "magnet", "size", "files", "sources", "publisher"}``.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from servent.errors import DaemonError

if TYPE_CHECKING:
    from servent.cli.api_client import ApiClient

JSON_KEYS = ("name", "infohash", "magnet", "size", "files", "sources", "publisher")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser("search", help="find files or people by name on the network")
    parser.add_argument("words", nargs="+", metavar="WORDS")
    parser.add_argument("--limit", type=int, default=50, metavar="N", help="at most N results")
    parser.add_argument(
        "--timeout", type=float, default=2.0, metavar="S", help="wait at most S seconds"
    )
    parser.add_argument("--people", action="store_true", help="find nodes by display name")
    parser.add_argument(
        "--network", metavar="NAME", help="search what the members of an invite-only network share"
    )
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def _query(args: argparse.Namespace) -> str:
    return urlencode(
        {"q": " ".join(args.words), "limit": args.limit, "timeout": args.timeout,
         "people": int(args.people)}
    )  # fmt: skip


def stream_results(client: ApiClient, query: str, timeout: float) -> Iterator[dict[str, Any]]:
    """The ``result`` events of ``GET /api/search`` as they arrive."""
    request = urllib.request.Request(f"{client.url}/api/search?{query}")
    request.add_header("Authorization", f"Bearer {client.token}")
    request.add_header("Accept", "text/event-stream")
    try:
        with urllib.request.urlopen(request, timeout=timeout + 30) as response:
            kind = ""
            for raw in response:
                line = raw.decode("utf-8").rstrip("\n")
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: ") and kind == "result":
                    yield json.loads(line[6:])
                elif line.startswith("data: ") and kind == "done":
                    return
    except urllib.error.HTTPError as exc:
        raise DaemonError(f"search failed: {exc.reason} (HTTP {exc.code})") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DaemonError(f"cannot reach the daemon at {client.url}: {exc}") from None


def _line(result: dict[str, Any]) -> str:
    from servent.cli.api_client import human_bytes

    if "infohash" not in result:
        return f"{result['short_id']}  {result['name']}  {result['id']}"
    return (
        f"{result['short_id']}  {result['name']}  {human_bytes(result['size'])}  "
        f"{result['sources']} source{'s' if result['sources'] != 1 else ''}"
    )


def run(args: argparse.Namespace) -> int:
    from servent.cli.api_client import client_from_args, print_json

    if not 1 <= args.limit <= 200:
        raise DaemonError("--limit must be 1..200")
    client = client_from_args(args)
    if args.network:
        return _in_network(client, args)
    if args.json:
        found = client.request("GET", f"/api/search?{_query(args)}")
        if not args.people:
            found = [{key: r[key] for key in JSON_KEYS} for r in found]
        print_json(found)
        return 0
    seen: set[str] = set()
    for result in stream_results(client, _query(args), args.timeout):
        if result["short_id"] not in seen:  # later events of a result add sources only
            seen.add(result["short_id"])
            print(_line(result), flush=True)
    if not seen:
        print("nothing found")
    else:
        print("add one with: servent add SHORT_ID")
    return 0


def _in_network(client: ApiClient, args: argparse.Namespace) -> int:
    from servent.cli.api_client import human_bytes, print_json
    from servent.cli.commands.network import network_path

    if args.people:
        raise DaemonError("--people and --network do not go together")
    query = urlencode({"q": " ".join(args.words), "limit": args.limit, "timeout": args.timeout})
    found = client.request("GET", network_path(args.network, f"/search?{query}"))
    if args.json:
        print_json(found)
        return 0
    for result in found:
        print(f"{result['name']}  {human_bytes(result['size'])}  {result['magnet']}")
    if not found:
        print("nothing found")
    return 0
