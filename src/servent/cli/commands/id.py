"""``servent id``: this node's ID, display name and addresses.

With a daemon running for the data directory it asks the daemon (which knows
its current addresses); without one it reads (or, before the first start,
creates) the key in the data directory, so a user can hand out the ID of a
node that is not running.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser(
        "id", help="print this node's ID (its public key), name and addresses"
    )
    add_client_arguments(parser)
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML settings file")
    parser.add_argument(
        "--name",
        dest="cfg_name",
        default=argparse.SUPPRESS,
        metavar="NAME",
        help="display name to show when no daemon runs (the setting 'name')",
    )
    parser.set_defaults(func=run)


def _identity(args: argparse.Namespace) -> dict[str, Any]:
    from servent.cli.api_client import find_daemon
    from servent.node.config import load_config
    from servent.node.identity import identity_record, load_or_create_identity

    overrides: dict[str, object] = {}
    if args.data_dir is not None:
        overrides["data_dir"] = args.data_dir
    if hasattr(args, "cfg_name"):
        overrides["name"] = args.cfg_name
    config = load_config(args.config, overrides)
    daemon = find_daemon(config.data_dir)
    if daemon is not None:
        answer: dict[str, Any] = daemon.request("GET", "/api/identity")
        return answer
    identity = load_or_create_identity(config.data_dir)
    return identity_record(identity, config.name, [])


def run(args: argparse.Namespace) -> int:
    from servent.cli.api_client import print_json

    record = _identity(args)
    if args.json:
        print_json(record)
        return 0
    print(f"id         {record['id']}")
    print(f"name       {record['name'] or '-'}")
    addresses = record["addresses"]
    print(f"addresses  {', '.join(addresses) if addresses else 'none known'}")
    return 0
