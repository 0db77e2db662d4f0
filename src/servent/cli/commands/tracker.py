"""``servent tracker``: run the built-in tracker (HTTP and UDP on one port)."""

from __future__ import annotations

import argparse

from servent.cli import event_loop

_LIMITS = """\
limits against abuse (a "client" is one IPv4 address or one IPv6 /64):
  a client may create at most --max-swarms-per-ip torrents; its announces and
  scrapes are limited to --request-rate per second on average (bursts of
  --request-burst); peers that stop announcing are dropped after two
  intervals, and torrents with no peers with them. When the table is full, a
  new torrent replaces one seen from a single address only, created by the
  client holding the most torrents, least recently announced first. HTTP
  requests must arrive within --read-timeout seconds, and each client may hold
  --max-connections-per-ip connections at once."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "tracker",
        help="run a BitTorrent tracker (HTTP /announce, /scrape and UDP)",
        description="Run a BitTorrent tracker: HTTP /announce and /scrape, and UDP (BEP 15), "
        "on one port number.",
        epilog=_LIMITS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--port", type=int, required=True, help="TCP and UDP port (0: any)")
    add("--host", default="0.0.0.0", help="address to listen on")
    add("--interval", type=int, default=1800, help="announce interval, seconds")
    add("--max-torrents", type=int, default=10_000, help="swarms kept at most")
    add("--max-peers", type=int, default=2_000, help="peers kept per swarm at most")
    add("--max-swarms-per-ip", type=int, default=1_000, help="swarms one client may create")
    add(
        "--request-rate",
        type=float,
        default=20.0,
        help="announces and scrapes per second per client, on average (0: no limit)",
    )
    add("--request-burst", type=float, default=200.0, help="requests a client may send at once")
    add("--read-timeout", type=float, default=10.0, help="seconds an HTTP request may take")
    add("--max-connections-per-ip", type=int, default=8, help="HTTP connections per client")
    add("--max-connections", type=int, default=512, help="HTTP connections in total")
    parser.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    from servent.errors import ConfigError

    if not 0 <= args.port <= 0xFFFF:
        raise ConfigError(f"--port {args.port} is out of range")
    positive = {
        "--interval": args.interval,
        "--max-torrents": args.max_torrents,
        "--max-peers": args.max_peers,
        "--max-swarms-per-ip": args.max_swarms_per_ip,
        "--request-burst": args.request_burst,
        "--read-timeout": args.read_timeout,
        "--max-connections-per-ip": args.max_connections_per_ip,
        "--max-connections": args.max_connections,
    }
    for flag, value in positive.items():
        if not value > 0:
            raise ConfigError(f"{flag} must be positive, not {value}")
    if args.request_rate < 0:
        raise ConfigError(
            f"--request-rate must be 0 (no limit) or positive, not {args.request_rate}"
        )


def run(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib

    from servent.net.tracker_http import HttpLimits
    from servent.net.tracker_server import TrackerServer
    from servent.proto.tracker_state import TrackerConfig

    _check(args)
    config = TrackerConfig(
        interval=args.interval,
        min_interval=min(60, args.interval),
        max_torrents=args.max_torrents,
        max_peers_per_torrent=args.max_peers,
        max_swarms_per_ip=args.max_swarms_per_ip,
        request_rate_per_ip=args.request_rate,
        request_burst_per_ip=args.request_burst,
    )
    limits = HttpLimits(
        read_timeout=args.read_timeout,
        max_connections=args.max_connections,
        max_connections_per_ip=args.max_connections_per_ip,
    )

    async def serve() -> None:
        async with TrackerServer(args.host, args.port, config=config, http_limits=limits) as server:
            print(
                f"tracker on http://{args.host}:{server.port}/announce and udp port {server.port}",
                flush=True,
            )
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        event_loop.run(serve())
    return 0
