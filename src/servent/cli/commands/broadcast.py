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
    parser.add_argument(
        "--network", metavar="NAME", help="to the members of an invite-only network only"
    )
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from servent.cli.api_client import client_from_args, print_json
    from servent.cli.message_lines import picked

    if args.network:
        return _to_network(args)
    body = {"broadcast": True, "text": args.text, "channel": args.channel}
    sent = client_from_args(args).request("POST", "/api/messages", body)
    if args.json:
        print_json(picked(sent))
    else:
        where = f"channel #{args.channel}" if args.channel else "everyone"
        print(f"broadcast {sent['id']} to {where}")
    return 0


def _to_network(args: argparse.Namespace) -> int:
    from servent.cli.api_client import client_from_args, print_json
    from servent.cli.commands.network import network_path

    path = network_path(args.network, "/broadcast")
    sent = client_from_args(args).request("POST", path, {"text": args.text})
    if args.json:
        print_json(sent)
    else:
        print(f"broadcast {sent['id']} to {sent['reached']} of {sent['members']} members "
              f"of {sent['network']}")  # fmt: skip
    return 0
