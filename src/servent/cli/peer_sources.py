"""Where ``get`` and ``seed`` find peers: their shared flags and the DHT they start.

The DHT is only started when asked for (``--bootstrap`` or ``--dht-port``), so
a one-shot command never contacts public routers by surprise.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from servent.errors import ConfigError

if TYPE_CHECKING:
    from servent.net.dht_driver import DhtDriver

__all__ = ["add_discovery_arguments", "dht_for", "discovery_config", "parse_peer", "wants_dht"]


def parse_peer(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` -> ``(host, port)``."""
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"not a peer address: {text!r} (expected HOST:PORT or [IPv6]:PORT)")
    return host, int(port_text)


def add_discovery_arguments(parser: argparse.ArgumentParser) -> None:
    """Peer-source flags shared by ``get`` and ``seed``."""
    parser.add_argument(
        "--tracker",
        metavar="URL",
        action="append",
        default=[],
        help="announce to this tracker too (repeatable; http://, udp://)",
    )
    parser.add_argument(
        "--no-trackers", action="store_true", help="do not announce to the torrent's trackers"
    )
    parser.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        action="append",
        default=[],
        help="join the DHT through this node (repeatable; enables the DHT)",
    )
    parser.add_argument(
        "--dht-port",
        metavar="N",
        type=int,
        default=None,
        help="UDP port of the DHT node (default: the TCP port's number; enables the DHT)",
    )
    parser.add_argument("--no-dht", action="store_true", help="never use the DHT")
    parser.add_argument(
        "--no-ip-restrictions",
        action="store_true",
        help="DHT: accept many nodes per IP address (test networks on one host)",
    )
    parser.add_argument(
        "--lsd", action="store_true", help="find peers on the local network by multicast (BEP 14)"
    )
    parser.add_argument(
        "--lsd-interface",
        metavar="IPV4",
        default=None,
        help="IPv4 address of the interface used for --lsd (default: any)",
    )
    parser.add_argument(
        "--lsd-interface6",
        metavar="NAME|INDEX",
        default=None,
        help="IPv6 interface (name or index) used for --lsd (default: the default one)",
    )
    parser.add_argument(
        "--lsd-family",
        choices=("both", "ipv4", "ipv6"),
        default="both",
        help="multicast families --lsd uses (default both, each when the host has it)",
    )
    parser.add_argument(
        "--lsd-interval",
        metavar="SECONDS",
        type=float,
        default=300.0,
        help="seconds between LSD announces of a torrent (default 300)",
    )
    parser.add_argument(
        "--encryption",
        choices=("off", "enabled", "required"),
        default="enabled",
        help="message stream encryption (MSE/PE) of peer connections: off, enabled "
        "(encrypted when the peer agrees, plaintext otherwise; default) or required",
    )


def discovery_config(args: argparse.Namespace) -> dict[str, object]:
    """EngineConfig keyword arguments from the discovery flags."""
    from servent.net.torrent_discovery import DiscoveryConfig

    if not 0 < args.lsd_interval <= 86_400:
        raise ConfigError("--lsd-interval must be between 0 and 86400 seconds")
    return {
        "discovery": DiscoveryConfig(
            lsd_interval=args.lsd_interval, lsd_reply_interval=min(60.0, args.lsd_interval)
        ),
        "trackers": not args.no_trackers or bool(args.tracker),
        "extra_trackers": tuple(args.tracker),
        "lsd": args.lsd,
        "lsd_interface": args.lsd_interface,
        "lsd_interface6": args.lsd_interface6,
        "lsd_ipv4": args.lsd_family != "ipv6",
        "lsd_ipv6": args.lsd_family != "ipv4",
        "encryption": args.encryption,
    }


def wants_dht(args: argparse.Namespace) -> bool:
    return not args.no_dht and (bool(args.bootstrap) or args.dht_port is not None)


@contextlib.asynccontextmanager
async def dht_for(
    args: argparse.Namespace, host: str | None, tcp_port: int
) -> AsyncIterator[DhtDriver | None]:
    """A DHT node for the engine when the flags ask for one, bootstrapped; closed on exit."""
    if not wants_dht(args):
        yield None
        return
    from servent.net.dht_driver import DhtDriver
    from servent.proto.dht import DhtConfig

    bootstrap = [parse_peer(text) for text in args.bootstrap]
    port = tcp_port if args.dht_port is None else args.dht_port
    config = (
        DhtConfig(restrict_ips=False, rate_limit_per_ip=0.0)
        if args.no_ip_restrictions
        else DhtConfig()
    )
    if host is not None and ":" in host:
        driver = DhtDriver(host=None, host6=host, port6=port, config=config)
    else:
        driver = DhtDriver(host=host or "0.0.0.0", port=port, config=config)
    try:
        await driver.start()
    except OSError as exc:
        raise ConfigError(f"cannot open the DHT's UDP port {port}: {exc.strerror or exc}") from None
    try:
        if bootstrap:
            found = await driver.bootstrap(bootstrap)
            print(f"DHT: joined through {len(bootstrap)} node(s), {len(found.nodes)} found",
                  file=sys.stderr, flush=True)  # fmt: skip
        yield driver
    finally:
        await driver.close()
