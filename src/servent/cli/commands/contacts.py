"""``servent contacts add ID [NAME] | list | remove ID``: the address book; messages from
contacts show their name, and the node keeps channels open to them for gossip."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser("contacts", help="the address book of node IDs")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add (or rename) a contact")
    add.add_argument("node_id", metavar="ID")
    add.add_argument("name", metavar="NAME", nargs="?")
    listing = actions.add_parser("list", help="list contacts with unread counts")
    remove = actions.add_parser("remove", help="remove a contact")
    remove.add_argument("node_id", metavar="ID")
    for sub in (add, listing, remove):
        add_client_arguments(sub)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from servent.cli.api_client import client_from_args, print_json
    from servent.codec.node_id import parse_node_id

    if args.action != "list":
        parse_node_id(args.node_id)
    client = client_from_args(args)
    if args.action == "add":
        contact = client.request("POST", "/api/contacts", {"id": args.node_id, "name": args.name})
        print_json(contact) if args.json else print(f"added {contact['name']} {contact['id']}")
    elif args.action == "remove":
        removed = client.request("DELETE", f"/api/contacts/{args.node_id.strip().lower()}")
        print_json(removed) if args.json else print(f"removed {removed['removed']}")
    else:
        contacts = client.request("GET", "/api/contacts")
        if args.json:
            print_json([{"id": c["id"], "name": c["name"]} for c in contacts])
        for contact in [] if args.json else contacts:
            unread = f"  {contact['unread']} unread" if contact["unread"] else ""
            print(f"{contact['id']}  {contact['name']}{unread}")
    return 0
