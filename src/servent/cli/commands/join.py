"""``servent join KEY DIR``: follow a synced share (docs/sync.md) in a folder."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser("join", help="join a synced share by its key into a folder")
    parser.add_argument(
        "key",
        metavar="KEY",
        help="a read-write (srw-), read-only (sro-) or encrypted (sen-) key; "
        "prw-, pro-, pen- keys are locked with a password",
    )
    parser.add_argument(
        "dir",
        metavar="DIR",
        help="the folder to keep in sync (made if missing); an encrypted key stores "
        "the encrypted copy there",
    )
    parser.add_argument(
        "--password-file",
        metavar="F",
        help="the file holding the password that opens a locked key",
    )
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from servent.cli.api_client import client_from_args, print_json
    from servent.cli.commands.share import read_password

    path = str(Path(args.dir).expanduser().resolve())
    body = {"key": args.key, "path": path}
    if args.password_file is not None:
        body["password"] = read_password(args.password_file)
    joined = client_from_args(args).request("POST", "/api/sync/join", body)
    if args.json:
        print_json(joined)
    else:
        print(f"joined share {joined['id']} as {joined['role']} in {joined['path']}")
    return 0
