"""``servent dht``: run a standalone Mainline DHT node or talk to the DHT once.

Subcommands: ``node`` (runs until interrupted), ``ping``, ``get-peers``,
``announce``, ``put`` and ``get`` (BEP 44). Each client command starts a
short-lived servent node (:mod:`servent.node.one_shot`: the DHT on, no peer
listener, no state kept), joins through ``--bootstrap``, does one thing and
exits within ``--timeout`` seconds. ``node`` is a bare DHT server instead,
with its own state file (see decision 0040). Output is readable text, or one
JSON object with ``--json``; bad input is one error line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from servent.cli import event_loop
from servent.cli.dht_input import parse_hash, parse_hostport, parse_item_target, read_key
from servent.errors import ConfigError, ServentError

if TYPE_CHECKING:
    from servent.net.dht_driver import DhtDriver

Address = tuple[str, int]


class DhtCommandTimeout(ServentError):
    """A DHT command did not finish within its ``--timeout``."""


def _common(parser: argparse.ArgumentParser, *, bootstrap_required: bool) -> None:
    parser.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        action="append",
        default=[],
        required=bootstrap_required,
        help="a DHT node to join through (repeatable)",
    )
    parser.add_argument("--host", default="0.0.0.0", help="local address to bind (default: all)")
    parser.add_argument(
        "--local-port",
        dest="local_port",
        type=int,
        default=0,
        help="local UDP port (default: any free port)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="give up after this many seconds (default: 30)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--no-ip-restrictions",
        action="store_true",
        help="accept many nodes per IP (local test networks on 127.0.0.1)",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "dht",
        help="Mainline DHT: run a node, find peers, store and fetch items",
        description="Talk to the Mainline DHT (BEP 5, 44).",
    )
    sub = parser.add_subparsers(dest="dht_command", metavar="SUBCOMMAND", required=True)

    node = sub.add_parser("node", help="run a DHT node until interrupted")
    node.add_argument("--port", type=int, default=0, help="UDP port (default: any free port)")
    node.add_argument("--host", default="0.0.0.0", help="IPv4 address to bind (default: all)")
    node.add_argument("--host6", default=None, help="also bind this IPv6 address (e.g. ::)")
    node.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        action="append",
        default=[],
        help="a DHT node to join through (repeatable), e.g. router.bittorrent.com:6881",
    )
    node.add_argument(
        "--state",
        type=Path,
        default=None,
        help="file to keep the node ID and routing table across restarts",
    )
    node.add_argument("--json", action="store_true", help="print the node's identity as JSON")
    node.add_argument(
        "--no-ip-restrictions",
        action="store_true",
        help="accept many nodes per IP (local test networks on 127.0.0.1)",
    )
    node.set_defaults(func=_run_node, timeout=None, local_port=None)

    ping = sub.add_parser("ping", help="ask one node whether it is alive")
    ping.add_argument("address", metavar="HOST:PORT")
    _common(ping, bootstrap_required=False)
    ping.set_defaults(func=_client(_ping))

    get_peers = sub.add_parser("get-peers", help="find peers of an info-hash")
    get_peers.add_argument("info_hash", metavar="INFOHASH")
    _common(get_peers, bootstrap_required=True)
    get_peers.set_defaults(func=_client(_get_peers))

    announce = sub.add_parser("announce", help="announce that a peer has an info-hash")
    announce.add_argument("info_hash", metavar="INFOHASH")
    announce.add_argument(
        "--port",
        dest="peer_port",
        type=int,
        required=True,
        help="the TCP port peers should connect to",
    )
    announce.add_argument(
        "--implied-port",
        action="store_true",
        help="let nodes use our UDP source port instead (BEP 5)",
    )
    _common(announce, bootstrap_required=True)
    announce.set_defaults(func=_client(_announce))

    put = sub.add_parser("put", help="store a BEP 44 item (immutable, or mutable with --key)")
    put.add_argument("value", metavar="VALUE", help="the value (stored as a byte string)")
    put.add_argument(
        "--key",
        type=Path,
        default=None,
        help="ed25519 key file (32-byte seed, raw or hex; created if missing)",
    )
    put.add_argument("--salt", default="", help="salt of a mutable item")
    put.add_argument("--seq", type=int, default=None, help="sequence number of a mutable item")
    _common(put, bootstrap_required=True)
    put.set_defaults(func=_client(_put))

    get = sub.add_parser("get", help="fetch a BEP 44 item by target or public key")
    get.add_argument(
        "target",
        metavar="TARGET_OR_PUBKEY",
        help="40 hex digits (target) or 64 hex digits (mutable item's public key)",
    )
    get.add_argument("--salt", default="", help="salt of a mutable item")
    _common(get, bootstrap_required=True)
    get.set_defaults(func=_client(_get))


# -- running ----------------------------------------------------------------------------


def _config(no_ip_restrictions: bool) -> Any:
    from servent.proto.dht import DhtConfig

    if no_ip_restrictions:
        return DhtConfig(restrict_ips=False, rate_limit_per_ip=0.0)
    return DhtConfig()


async def _resolve(addrs: list[Address]) -> list[Address]:
    """Resolve host names (router.example.org:6881) to IP addresses."""
    loop = asyncio.get_running_loop()
    resolved: list[Address] = []
    for host, port in addrs:
        infos = await loop.getaddrinfo(host, port, type=2)  # SOCK_DGRAM
        if not infos:
            raise ConfigError(f"cannot resolve {host}")
        address = infos[0][4]
        resolved.append((str(address[0]), int(address[1])))
    return resolved


def _emit(args: argparse.Namespace, data: dict[str, Any], text: str) -> None:
    print(json.dumps(data, sort_keys=True) if args.json else text, flush=True)


def _client(
    action: Callable[[argparse.Namespace, DhtDriver], Awaitable[int]],
) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        if args.timeout is not None and not 0 < args.timeout <= 3600:
            raise ConfigError("--timeout must be between 0 and 3600 seconds")
        if not 0 <= args.local_port < 65536:
            raise ConfigError(f"--local-port {args.local_port} out of range")
        args.bootstrap = [parse_hostport(text) for text in args.bootstrap]
        _check_input(args)
        return event_loop.run(_client_main(args, action))

    return handler


async def _client_main(
    args: argparse.Namespace,
    action: Callable[[argparse.Namespace, DhtDriver], Awaitable[int]],
) -> int:
    from servent import __version__
    from servent.node.one_shot import one_shot_node

    settings = {
        "listen_host": args.host,
        "listen_port": args.local_port,
        "dht_enabled": True,
        "dht_restrict_ips": not args.no_ip_restrictions,
    }
    try:
        async with asyncio.timeout(args.timeout):
            bootstrap = await _resolve(args.bootstrap)
            # The DHT only: the node does not listen for peers.
            node = one_shot_node(settings, client_version=__version__, swarm={"listen": False})
            async with node as running:
                driver = running.dht
                assert driver is not None  # a one-shot node's DHT binds or raises
                if bootstrap:
                    await driver.bootstrap(bootstrap)
                    if len(driver.node.routing_table) == 0:
                        raise ServentError("no bootstrap node answered")
                return await action(args, driver)
    except TimeoutError:
        raise DhtCommandTimeout(f"no result within {args.timeout:g} s") from None


async def _ping(args: argparse.Namespace, driver: DhtDriver) -> int:
    (addr,) = await _resolve([parse_hostport(args.address)])
    started = time.monotonic()
    event = await driver.ping(addr)
    node_id: bytes | None = event.node_id
    if node_id is None:
        raise ServentError(f"{addr[0]}:{addr[1]} did not answer")
    elapsed = (time.monotonic() - started) * 1000
    _emit(
        args,
        {"address": f"{addr[0]}:{addr[1]}", "node_id": node_id.hex(), "ms": elapsed},
        f"{addr[0]}:{addr[1]} answered: node ID {node_id.hex()} in {elapsed:.1f} ms",
    )
    return 0


async def _get_peers(args: argparse.Namespace, driver: DhtDriver) -> int:
    info_hash = parse_hash(args.info_hash)
    event = await driver.get_peers(info_hash)
    peers = [f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}" for ip, port in event.peers]
    lines = [f"{len(peers)} peers for {info_hash.hex()} (asked {len(event.nodes)} nodes)"]
    _emit(
        args,
        {"info_hash": info_hash.hex(), "peers": peers, "nodes": len(event.nodes)},
        "\n".join(lines + peers),
    )
    return 0


async def _announce(args: argparse.Namespace, driver: DhtDriver) -> int:
    info_hash = parse_hash(args.info_hash)
    if not 0 < args.peer_port < 65536:
        raise ConfigError(f"--port {args.peer_port} out of range")
    event = await driver.announce(info_hash, args.peer_port, implied_port=args.implied_port)
    _emit(
        args,
        {"info_hash": info_hash.hex(), "stored": event.stored, "port": args.peer_port},
        f"announced {info_hash.hex()} port {args.peer_port} to {event.stored} nodes",
    )
    return 0 if event.stored > 0 else 1


async def _put(args: argparse.Namespace, driver: DhtDriver) -> int:
    value = args.value.encode()
    salt = args.salt.encode()
    if args.key is None:
        if salt or args.seq is not None:
            raise ConfigError("--salt and --seq need --key (they belong to mutable items)")
        event = await driver.put_immutable(value)
        data: dict[str, Any] = {"target": event.target.hex(), "stored": event.stored}
        text = f"stored immutable item {event.target.hex()} on {event.stored} nodes"
    else:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        seed = read_key(args.key)
        public = (
            Ed25519PrivateKey.from_private_bytes(seed)
            .public_key()
            .public_bytes(Encoding.Raw, PublicFormat.Raw)
        )
        event = await driver.put_mutable(seed, value, salt=salt, seq=args.seq)
        data = {
            "target": event.target.hex(),
            "stored": event.stored,
            "seq": event.seq,
            "public_key": public.hex(),
            "salt": args.salt,
        }
        text = (
            f"stored mutable item {event.target.hex()} (public key {public.hex()}, "
            f"seq {event.seq}) on {event.stored} nodes"
        )
    if event.error:
        data["error"] = event.error
        text += f"; error: {event.error}"
    _emit(args, data, text)
    return 0 if event.stored > 0 else 1


async def _get(args: argparse.Namespace, driver: DhtDriver) -> int:
    salt = args.salt.encode()
    target = parse_item_target(args.target, salt)
    event = await driver.get_item(target, salt=salt)
    if event.value is None:
        raise ServentError(f"no item found for {target.hex()}")
    value = event.value
    shown = value.decode("utf-8", "replace") if isinstance(value, bytes) else repr(value)
    data: dict[str, Any] = {"target": target.hex(), "value": shown}
    text = shown
    if event.seq is not None:
        data["seq"] = event.seq
        text += f"\n(seq {event.seq})"
    _emit(args, data, text)
    return 0


def _check_input(args: argparse.Namespace) -> None:
    """Refuse bad input before touching the network (one clear error line, exit 1)."""
    if args.dht_command == "ping":
        parse_hostport(args.address)
    elif args.dht_command in ("get-peers", "announce"):
        parse_hash(args.info_hash)
        if args.dht_command == "announce" and not 0 < args.peer_port < 65536:
            raise ConfigError(f"--port {args.peer_port} out of range")
    elif args.dht_command == "get":
        parse_item_target(args.target, args.salt.encode())
    elif args.dht_command == "put" and args.key is not None:
        read_key(args.key)


def _run_node(args: argparse.Namespace) -> int:
    if not 0 <= args.port < 65536:
        raise ConfigError(f"--port {args.port} out of range")
    args.bootstrap = [parse_hostport(text) for text in args.bootstrap]
    return event_loop.run(_node_main(args))


async def _node_main(args: argparse.Namespace) -> int:
    import signal

    from servent.net.dht_driver import DhtDriver

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    bootstrap = await _resolve(args.bootstrap)
    driver = DhtDriver(
        host=args.host,
        port=args.port,
        host6=args.host6,
        config=_config(args.no_ip_restrictions),
        state_path=args.state,
    )
    async with driver:
        host, port = driver.address
        data: dict[str, Any] = {"node_id": driver.node_id.hex(), "address": f"{host}:{port}"}
        text = f"DHT node {driver.node_id.hex()} listening on {host}:{port}"
        if driver.address6 is not None:
            data["address6"] = "[{}]:{}".format(*driver.address6)
            text += " and [{}]:{}".format(*driver.address6)
        print(json.dumps(data) if args.json else text, flush=True)
        if bootstrap or driver.saved_contacts:
            async with asyncio.TaskGroup() as group:
                join = group.create_task(_join(driver, bootstrap))
                await stop.wait()
                join.cancel()
        else:
            await stop.wait()
    print("DHT node stopped", file=sys.stderr, flush=True)
    return 0


async def _join(driver: DhtDriver, bootstrap: list[Address]) -> None:
    try:
        async with asyncio.timeout(60):
            await driver.bootstrap(bootstrap)
    except TimeoutError:
        return
    print(
        f"joined: {len(driver.node.routing_table)} nodes in the routing table",
        file=sys.stderr,
        flush=True,
    )
