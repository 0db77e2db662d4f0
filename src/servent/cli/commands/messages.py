"""``servent messages``: received messages; ``--follow`` prints new ones as they arrive;
``--outbox`` shows the direct messages still waiting for their recipient."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser("messages", help="list received messages (or the outbox)")
    parser.add_argument("--follow", action="store_true", help="keep printing new messages")
    parser.add_argument("--outbox", action="store_true", help="messages not yet delivered")
    parser.add_argument("--channel", metavar="NAME", help="only broadcasts of this channel")
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from urllib.parse import quote

    from servent.cli.api_client import client_from_args, print_json
    from servent.cli.message_lines import (
        OUTBOX_KEYS,
        follow_events,
        message_line,
        outbox_line,
        picked,
    )

    client = client_from_args(args)
    if args.outbox:
        waiting = client.request("GET", "/api/messages/outbox")
        if args.json:
            print_json([picked(m, OUTBOX_KEYS) for m in waiting])
        else:
            for message in waiting:
                print(outbox_line(message))
            if not waiting:
                print("the outbox is empty")
        return 0
    query = "/api/messages?direction=in"
    if args.channel is not None:
        query += "&channel=" + quote(args.channel)
    if args.follow and args.channel is not None:  # keep (and relay) the channel from now on
        client.request("POST", "/api/channels", {"channel": args.channel})
    received = client.request("GET", query)
    if args.follow:
        for message in received:
            _print(message, args.json)
        for message in follow_events(client, frozenset({"message_received"})):
            if args.channel is None or message.get("channel") == args.channel:
                _print(message, args.json)
        return 0
    if args.json:
        print_json([picked(m) for m in received])
    else:
        for message in received:
            print(message_line(message))
    return 0


def _print(message: dict[str, Any], as_json: bool) -> None:
    from servent.cli.message_lines import message_line, picked

    print(json.dumps(picked(message)) if as_json else message_line(message))
    sys.stdout.flush()
