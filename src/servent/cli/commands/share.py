"""``servent share PATH``: seed a folder or a file from the running daemon; print its magnet.

``--with-peer`` puts this node's address in the magnet (``x.pe``), so a node
on the same network finds it from the link alone, with no tracker or DHT.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from servent.cli.api_client import ApiClient

#: ``--with-peer`` without a value: the daemon fills in its own address.
OWN_ADDRESS = "own"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from servent.cli.api_client import add_client_arguments

    parser = subparsers.add_parser(
        "share",
        help="share a folder or a file (hybrid torrent, seeded, remembered); prints its magnet",
    )
    # Optional for argparse only: "--with-peer PATH" reads PATH as the flag's value
    # (see path_and_peer).
    parser.add_argument("path", metavar="PATH", nargs="?", help="the folder or file to share")
    parser.add_argument(
        "--with-peer",
        metavar="HOST:PORT",
        nargs="?",
        const=OWN_ADDRESS,
        default=None,
        help="put this node in the magnet as a peer (x.pe) so others need no tracker or "
        "DHT; the daemon's listening address unless HOST:PORT is given",
    )
    parser.add_argument(
        "--sync",
        action="store_true",
        help="make it a synced share: print its read-write, read-only and encrypted keys; "
        "changes to the folder are published as new versions (docs/sync.md)",
    )
    parser.add_argument(
        "--password-file",
        metavar="F",
        help="with --sync: lock the keys printed with the password in file F "
        "(joining then needs it too)",
    )
    parser.add_argument(
        "--network", metavar="NAME", help="share with the members of an invite-only network only"
    )
    add_client_arguments(parser)
    parser.set_defaults(func=run)


def path_and_peer(path: str | None, with_peer: str | None) -> tuple[str, str | None]:
    """The path to share and the ``--with-peer`` value, when ``servent share --with-peer
    DIR`` gave the path as the flag's value; a bad HOST:PORT is a clear error."""
    from servent.cli.peer_sources import parse_peer
    from servent.errors import ConfigError

    if path is None:
        if with_peer is None or with_peer == OWN_ADDRESS:
            raise ConfigError("give the folder or file to share: servent share PATH")
        try:
            parse_peer(with_peer)
        except ConfigError:
            return with_peer, OWN_ADDRESS  # "--with-peer DIR": the flag had no value
        raise ConfigError(f"give the folder or file to share: servent share PATH "
                          f"--with-peer {with_peer}")  # fmt: skip
    if with_peer is not None and with_peer != OWN_ADDRESS:
        host, port = parse_peer(with_peer)
        with_peer = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return path, with_peer


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from servent.cli.api_client import client_from_args, print_json

    given, with_peer = path_and_peer(args.path, args.with_peer)
    if args.network and (args.sync or with_peer is not None):
        from servent.errors import ConfigError

        raise ConfigError("--network goes with neither --sync nor --with-peer")
    client = client_from_args(args)
    if args.sync:
        password = None if args.password_file is None else read_password(args.password_file)
        return _run_synced(client, str(Path(given).expanduser().resolve()), password, args.json)
    if args.password_file is not None:
        from servent.errors import ConfigError

        raise ConfigError("--password-file goes with --sync")
    path = Path(given).expanduser().resolve()
    body: dict[str, object] = {"path": str(path)}
    if with_peer == OWN_ADDRESS:
        body["with_peer"] = True
    elif with_peer is not None:
        body["with_peer"] = with_peer
    if args.network:
        from servent.cli.commands.network import network_path

        result = client.request("POST", network_path(args.network, "/shares"), body)
    else:
        result = client.request("POST", "/api/shares", body)
    if args.json:
        print_json(result)
    else:
        verb = "already shared" if result.get("existing") else "sharing"
        print(f"{verb} {result['path']} (id {result['id'][:12]})")
        print(result["magnet"])
    return 0


def read_password(file_name: str) -> str:
    """The password in ``file_name``: its text, one final line break dropped."""
    from pathlib import Path

    from servent.errors import ConfigError

    try:
        text = Path(file_name).read_bytes()[: MAX_PASSWORD_FILE + 1].decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"the password file {file_name!r} is not UTF-8 text") from None
    password = text.removesuffix("\n").removesuffix("\r")
    if not password or len(password) > MAX_PASSWORD_FILE:
        raise ConfigError(f"the password file {file_name!r} holds no password (or a huge one)")
    return password


#: Bytes read from a password file at most.
MAX_PASSWORD_FILE = 1024


def _run_synced(client: ApiClient, path: str, password: str | None, as_json: bool) -> int:
    from servent.cli.api_client import print_json

    body = {"path": path} if password is None else {"path": path, "password": password}
    keys = client.request("POST", "/api/sync", body)
    if as_json:
        print_json(keys)
    else:
        print(f"syncing {path} (share {keys['id']})")
        print(f"read-write key (lets the holder change the folder): {keys['read_write_key']}")
        print(f"read-only key (lets the holder follow it): {keys['read_only_key']}")
        print(f"encrypted key (lets the holder store it unread): {keys['encrypted_key']}")
    return 0
