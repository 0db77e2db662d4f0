"""``servent broadcast TEXT``: a message to every node (or a channel), signed, by gossip."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser(
        "broadcast", help="send a signed message to every node of the network (or a channel)"
    )
    parser.add_argument("text", metavar="TEXT", help="the message (at most 64 KiB of UTF-8)")
    parser.add_argument(
        "--channel", default="", metavar="NAME", help="a named channel instead of everyone"
    )
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from servent.cli.api_client import client_from_args, print_json
    from servent.cli.message_lines import picked

    body = {"broadcast": True, "text": args.text, "channel": args.channel}
    sent = client_from_args(args).request("POST", "/api/messages", body)
    if args.json:
        print_json(picked(sent))
    else:
        where = f"channel #{args.channel}" if args.channel else "everyone"
        print(f"broadcast {sent['id']} to {where}")
    return 0
