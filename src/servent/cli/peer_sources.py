"""Where ``get`` and ``seed`` find peers: their shared flags and the DHT they start.

The DHT is only started when asked for (``--bootstrap`` or ``--dht-port``), so
a one-shot command never contacts public routers by surprise.  It starts as the
daemon's does (:func:`servent.node.dht.start_dht`): on IPv4 and IPv6 for the
"every address" host, and, with uTP on, on UDP sockets it shares with uTP (one
port number for TCP, uTP and the DHT, as libtorrent does).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from servent.errors import ConfigError
from servent.node.config import UTP_PREFERENCES, Config

if TYPE_CHECKING:
    from servent.net.dht_driver import DhtDriver
    from servent.net.port_reservation import PortReservation

__all__ = [
    "add_discovery_arguments",
    "dht_for",
    "discovery_config",
    "parse_peer",
    "port_for",
    "transport_settings",
    "wants_dht",
]


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
    parser.add_argument(
        "--no-utp",
        action="store_true",
        help="peer connections over TCP only: no uTP (BEP 29), incoming or outgoing",
    )
    parser.add_argument(
        "--utp-preference",
        choices=UTP_PREFERENCES,
        default="prefer-tcp",  # the daemon's default (Config.utp_preference)
        help="dialling order: prefer-tcp (uTP when TCP fails; default), prefer-utp "
        "(TCP when uTP fails) or tcp-only (uTP still accepted)",
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


def transport_settings(args: argparse.Namespace) -> dict[str, object]:
    """The one-shot node's uTP settings (``Config`` fields, as the daemon's) from the flags."""
    return {"utp_enabled": not args.no_utp, "utp_preference": args.utp_preference}


def wants_dht(args: argparse.Namespace) -> bool:
    return not args.no_dht and (bool(args.bootstrap) or args.dht_port is not None)


@contextlib.asynccontextmanager
async def port_for(
    args: argparse.Namespace, host: str | None, tcp_port: int
) -> AsyncIterator[PortReservation | None]:
    """One port number bound for TCP and UDP when the command starts a DHT on a port it
    picks (no ``--port``, ``--dht-port`` 0 or absent): the DHT and the swarm take their
    sockets from it (so no other process takes the TCP number between them); None when
    the flags name a port.  What they did not take is released on exit."""
    if not wants_dht(args) or tcp_port != 0 or args.dht_port not in (None, 0):
        yield None
        return
    from servent.net.port_reservation import reservation_hosts, reserve_port

    listen_host = _dht_config(args, host, 0).listen_host
    try:
        reserved = reserve_port(reservation_hosts(listen_host))
    except OSError as exc:
        raise ConfigError(f"cannot reserve a port for peers and the DHT: {exc}") from exc
    try:
        yield reserved
    finally:
        reserved.close()


@contextlib.asynccontextmanager
async def dht_for(
    args: argparse.Namespace,
    host: str | None,
    tcp_port: int,
    reserved: PortReservation | None = None,
) -> AsyncIterator[DhtDriver | None]:
    """A DHT node for the engine when the flags ask for one, bootstrapped; closed on exit.

    ``host`` None listens on every IPv4 and IPv6 address (IPv4 alone without IPv6);
    ``reserved`` (from :func:`port_for`) gives the DHT its UDP sockets."""
    if not wants_dht(args):
        yield None
        return
    from servent.node.dht import start_dht, stop_dht

    bootstrap = [parse_peer(text) for text in args.bootstrap]
    ports = reserved.take_udp() if reserved is not None else []
    driver = await start_dht(_dht_config(args, host, tcp_port), None, required=True, ports=ports)
    assert driver is not None  # required: it binds or raises
    try:
        if bootstrap:
            found = await driver.bootstrap(bootstrap)
            print(f"DHT: joined through {len(bootstrap)} node(s), {len(found.nodes)} found",
                  file=sys.stderr, flush=True)  # fmt: skip
        yield driver
    finally:
        await stop_dht(driver, None)  # closes the sockets it shared with uTP too


def _dht_config(args: argparse.Namespace, host: str | None, tcp_port: int) -> Config:
    """The command's DHT settings (dual stack resolved: IPv4 alone on a host without IPv6)."""
    from servent.node.dht import dual_stack_config
    from servent.node.one_shot import ONE_SHOT

    port = tcp_port if args.dht_port is None else args.dht_port
    config = dataclasses.replace(
        ONE_SHOT, listen_host=host or "", listen_port=port,
        dht_restrict_ips=not args.no_ip_restrictions, utp_enabled=_utp_shares_port(args, tcp_port),
    )  # fmt: skip
    # The command's node warns of a missing IPv6 as it starts: once is enough.
    return dual_stack_config(config, warn=False)


def _utp_shares_port(args: argparse.Namespace, tcp_port: int) -> bool:
    """Whether uTP runs on the DHT's port: uTP is on, and the peer port is the DHT's
    (given the same, or 0: the swarm then listens on the DHT's port number)."""
    return not args.no_utp and (args.dht_port is None or tcp_port in (0, args.dht_port))
