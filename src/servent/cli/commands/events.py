"""``servent events``: the running daemon's events as they happen, until Ctrl-C.

With ``--json`` each event is one JSON object per line (its ``type`` key
names it), ready for ``jq`` or a script; otherwise one readable line each.
The web UI's once-a-second ``torrents`` snapshots are not events and are
left out.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

#: Stream entries that are not node events (the web UI's list refresh).
SNAPSHOT = "torrents"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser(
        "events", help="print the running daemon's events as they happen (Ctrl-C stops)"
    )
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def event_line(event: dict[str, Any]) -> str:
    """One readable line: local time, type, short torrent id, then the other fields."""
    when = time.strftime("%H:%M:%S", time.localtime(float(event.get("time", time.time()))))
    parts = [when, str(event.get("type", "?"))]
    torrent_id = event.get("torrent_id")
    if isinstance(torrent_id, str):
        parts.append(torrent_id[:12])
    for key, value in event.items():
        if key not in {"type", "time", "torrent_id"}:
            shown = value if isinstance(value, str) else json.dumps(value)
            parts.append(f"{key}={shown}")
    return "  ".join(parts)


def run(args: argparse.Namespace) -> int:
    from servent.cli.api_client import client_from_args

    client = client_from_args(args)

    def opened() -> None:
        print(f"servent: events of {client.url} (Ctrl-C stops)", file=sys.stderr, flush=True)

    try:
        for name, data in client.events(on_open=opened):
            if name == SNAPSHOT or not isinstance(data, dict):
                continue
            data.setdefault("type", name)
            print(json.dumps(data) if args.json else event_line(data), flush=True)
    except KeyboardInterrupt:
        return 0
    return 0
