"""``servent send ID TEXT``: a direct message, end-to-end encrypted over a node channel.

The daemon stores it in its outbox first, so it is retried until delivered
even across restarts; ``--wait S`` waits up to S seconds for the recipient's
acknowledgement and exits 0 only once it arrived.
"""

from __future__ import annotations

import argparse

EXIT_NOT_DELIVERED = 3


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser("send", help="send a direct message to a node by its ID")
    parser.add_argument("node_id", metavar="ID", help="the recipient's node ID")
    parser.add_argument("text", metavar="TEXT", help="the message (at most 64 KiB of UTF-8)")
    parser.add_argument(
        "--wait", type=float, default=0.0, metavar="S",
        help="wait up to S seconds for delivery (exit 0 when delivered, 3 when not yet)",
    )  # fmt: skip
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from servent.cli.api_client import client_from_args, print_json
    from servent.cli.message_lines import OUTBOX_KEYS, picked
    from servent.codec.node_id import parse_node_id

    parse_node_id(args.node_id)  # a typo is reported before the daemon is asked
    client = client_from_args(args)
    if args.wait:
        client.timeout = max(client.timeout, args.wait + 30.0)
    body = {"to": args.node_id, "text": args.text, "wait": args.wait}
    sent = client.request("POST", "/api/messages", body)
    delivered = sent.get("delivered") is not None
    if args.json:
        print_json({**picked(sent, OUTBOX_KEYS), "delivered": sent.get("delivered")})
    elif delivered:
        print(f"delivered {sent['id']}")
    else:
        print(f"queued {sent['id']} (in the outbox until the recipient acknowledges it)")
    if args.wait and not delivered:
        reason = sent.get("last_error") or "no attempt finished yet"
        print(f"servent: not delivered within {args.wait:g} s: {reason}", file=sys.stderr)
        return EXIT_NOT_DELIVERED
    return 0
