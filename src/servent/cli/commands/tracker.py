"""``servent tracker``: run the built-in tracker (HTTP and UDP on one port)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "tracker", help="run a BitTorrent tracker (HTTP /announce, /scrape and UDP)"
    )
    parser.add_argument("--port", type=int, required=True, help="TCP and UDP port (0: any)")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
    parser.add_argument("--interval", type=int, default=1800, help="announce interval, seconds")
    parser.add_argument("--max-torrents", type=int, default=10_000, help="swarms kept at most")
    parser.add_argument("--max-peers", type=int, default=2_000, help="peers kept per swarm at most")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib

    from servent.errors import ConfigError
    from servent.net.tracker_server import TrackerServer
    from servent.proto.tracker_state import TrackerConfig

    if not 0 <= args.port <= 0xFFFF:
        raise ConfigError(f"--port {args.port} is out of range")
    if args.interval < 1 or args.max_torrents < 1 or args.max_peers < 1:
        raise ConfigError("--interval, --max-torrents and --max-peers must be positive")
    config = TrackerConfig(
        interval=args.interval,
        min_interval=min(60, args.interval),
        max_torrents=args.max_torrents,
        max_peers_per_torrent=args.max_peers,
    )

    async def serve() -> None:
        async with TrackerServer(args.host, args.port, config=config) as server:
            print(
                f"tracker on http://{args.host}:{server.port}/announce and udp port {server.port}",
                flush=True,
            )
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0
