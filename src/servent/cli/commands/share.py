"""``servent share PATH``: seed a folder or a file from the running daemon; print its magnet.

``--with-peer`` puts this node's address in the magnet (``x.pe``), so a node
on the same network finds it from the link alone, with no tracker or DHT.
"""

from __future__ import annotations

import argparse

#: ``--with-peer`` without a value: the daemon fills in its own address.
OWN_ADDRESS = "own"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser(
        "share",
        help="share a folder or a file (hybrid torrent, seeded, remembered); prints its magnet",
    )
    parser.add_argument("path", metavar="PATH", help="the folder or file to share")
    parser.add_argument(
        "--with-peer",
        metavar="HOST:PORT",
        nargs="?",
        const=OWN_ADDRESS,
        default=None,
        help="put this node in the magnet as a peer (x.pe) so others need no tracker or "
        "DHT; the daemon's listening address unless HOST:PORT is given",
    )
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from servent.cli.api_client import client_from_args, print_json
    from servent.cli.peer_sources import parse_peer

    client = client_from_args(args)
    path = Path(args.path).expanduser().resolve()
    body: dict[str, object] = {"path": str(path)}
    if args.with_peer == OWN_ADDRESS:
        body["with_peer"] = True
    elif args.with_peer is not None:
        host, port = parse_peer(args.with_peer)
        body["with_peer"] = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    result = client.request("POST", "/api/shares", body)
    if args.json:
        print_json(result)
    else:
        verb = "already shared" if result.get("existing") else "sharing"
        print(f"{verb} {result['path']} (id {result['id'][:12]})")
        print(result["magnet"])
    return 0
