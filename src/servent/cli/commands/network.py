"""``servent network ...``: invite-only networks (``docs/networks.md``).

``create NAME``, ``invite NAME [--uses N] [--expires DURATION]``, ``join INVITE``,
``list``, ``members NAME``, ``revoke NAME MEMBER_ID``, ``promote NAME MEMBER_ID``,
``demote NAME MEMBER_ID``, ``leave NAME``; each with
``--json``.  Sharing, searching and broadcasting inside a network are the
``--network NAME`` flags of ``share``, ``search`` and ``broadcast``.
"""

from __future__ import annotations

import argparse
import time
from typing import Any
from urllib.parse import quote


def network_path(name: str, tail: str = "") -> str:
    """The API path of network ``name`` (any name, quoted)."""
    return f"/api/networks/{quote(name, safe='')}{tail}"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser("network", help="invite-only networks: create, invite, join")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a network (you are its first admin)")
    create.add_argument("name", metavar="NAME")
    invite = actions.add_parser("invite", help="print an invitation to the network")
    invite.add_argument("name", metavar="NAME")
    invite.add_argument("--uses", type=int, default=1, metavar="N", help="joins it allows (1)")
    invite.add_argument(
        "--expires", metavar="DURATION", help="valid for 30s, 15m, 2h, 7d (default: no limit)"
    )
    join = actions.add_parser("join", help="join a network by an invitation")
    join.add_argument("invite", metavar="INVITE")
    actions.add_parser("list", help="the networks of this node")
    members = actions.add_parser("members", help="the members of a network")
    members.add_argument("name", metavar="NAME")
    revoke = actions.add_parser("revoke", help="remove a member for good (admins)")
    revoke.add_argument("name", metavar="NAME")
    revoke.add_argument("member", metavar="MEMBER_ID")
    for verb, what in (("promote", "make a member an admin"),
                       ("demote", "make an admin a plain member")):  # fmt: skip
        change = actions.add_parser(verb, help=f"{what} (admins)")
        change.add_argument("name", metavar="NAME")
        change.add_argument("member", metavar="MEMBER_ID")
    leave = actions.add_parser("leave", help="forget a network on this node")
    leave.add_argument("name", metavar="NAME")
    for action in actions.choices.values():
        add_client_arguments(action)
    parser.set_defaults(func=run)


def _call(args: argparse.Namespace) -> Any:
    from servent.cli.api_client import client_from_args

    client = client_from_args(args)
    match args.action:
        case "create":
            return client.request("POST", "/api/networks", {"name": args.name})
        case "invite":
            body: dict[str, object] = {"uses": args.uses}
            if args.expires:
                body["expires"] = args.expires
            return client.request("POST", network_path(args.name, "/invites"), body)
        case "join":
            return client.request("POST", "/api/networks/join", {"invite": args.invite})
        case "list":
            return client.request("GET", "/api/networks")
        case "members":
            return client.request("GET", network_path(args.name, "/members"))
        case "revoke":
            path = network_path(args.name, f"/members/{quote(args.member, safe='')}")
            return client.request("DELETE", path)
        case "promote":
            body = {"member": args.member}
            return client.request("POST", network_path(args.name, "/admins"), body)
        case "demote":
            path = network_path(args.name, f"/admins/{quote(args.member, safe='')}")
            return client.request("DELETE", path)
        case _:
            return client.request("DELETE", network_path(args.name))


def run(args: argparse.Namespace) -> int:
    from servent.cli.api_client import print_json

    answer = _call(args)
    if args.json:
        print_json(answer)
    else:
        for line in _lines(args.action, answer):
            print(line)
    return 0


def _network_line(network: dict[str, Any]) -> str:
    role = "admin" if network["admin"] else "member"
    return (
        f"{network['name']}  {network['id']}  {network['members']} member"
        f"{'s' if network['members'] != 1 else ''}  epoch {network['epoch']}  {role}"
    )


def _lines(action: str, answer: Any) -> list[str]:
    match action:
        case "create" | "join":
            verb = "created" if action == "create" else "joined"
            return [f"{verb} {_network_line(answer)}"]
        case "invite":
            until = (
                "no expiry" if answer["expires"] is None
                else "until " + time.strftime("%Y-%m-%d %H:%M", time.localtime(answer["expires"]))
            )  # fmt: skip
            return [answer["invite"], f"({answer['uses']} use(s), {until})"]
        case "list":
            return [_network_line(n) for n in answer] or ["no networks"]
        case "members":
            return [
                f"{m['id']}  {m['name'] or '-'}{'  admin' if m['admin'] else ''}"
                f"{'  (you)' if m['you'] else '  connected' if m['connected'] else ''}"
                for m in answer
            ]
        case "revoke":
            return [f"revoked; {_network_line(answer)}"]
        case "promote" | "demote":
            return [f"{action}d; {_network_line(answer)}"]
        case _:
            return [f"left {answer['left']}"]
