"""``servent seed``: share a file or folder (or the payload of a torrent) until interrupted.

Given a file or folder without a torrent, one is created first (hybrid v1+v2)
and written to ``--torrent FILE`` if that is given.  Given a ``.torrent``,
its payload is looked for next to it.  The data is verified before seeding;
data that does not match the torrent is an error, not a partial seed.  The
listening addresses and the magnet link (with those addresses as ``x.pe``
peers) are printed on stdout, one per line, as soon as seeding starts.  It
runs through a one-shot node (:mod:`servent.node.one_shot`) like every front end.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from servent.cli import event_loop
from servent.cli.commands.get import (
    add_data_dir_argument,
    format_address,
    load_torrent,
    resume_store,
    stop_on_signals,
)
from servent.cli.peer_sources import (
    add_discovery_arguments,
    dht_for,
    discovery_config,
    parse_peer,
    port_for,
    transport_settings,
)
from servent.errors import ConfigError

if TYPE_CHECKING:
    from servent.codec.metainfo import Metainfo


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "seed",
        help="share a file, folder or torrent with peers until interrupted",
        description="Seed a file or folder (a torrent is created for it) or the payload "
        "of a .torrent (looked for next to it). Prints the listening address and the "
        "magnet link.",
    )
    parser.add_argument(
        "path",
        metavar="PATH_OR_TORRENT",
        help="file or folder to share, or a .torrent whose data is beside it",
    )
    parser.add_argument(
        "--torrent",
        metavar="FILE",
        help="the torrent of PATH: used if it exists, else created and written there",
    )
    parser.add_argument(
        "--port",
        metavar="N",
        type=int,
        default=0,
        help="TCP port to listen on (default 0: any free port)",
    )
    parser.add_argument(
        "--host",
        metavar="ADDR",
        default=None,
        help="address to listen on (default: every IPv4 and IPv6 address)",
    )
    add_data_dir_argument(parser)
    add_discovery_arguments(parser)
    parser.set_defaults(func=run_seed)


def run_seed(args: argparse.Namespace) -> int:
    if not 0 <= args.port < 65536:
        raise ConfigError(f"--port: {args.port} is not a port number (0 = any)")
    if args.dht_port is not None and not 0 <= args.dht_port < 65536:
        raise ConfigError(f"--dht-port: {args.dht_port} is not a port number")
    for text in args.bootstrap:
        parse_peer(text)
    meta, data_dir = _torrent_and_folder(args, Path(args.path), args.torrent)
    return event_loop.run(_seed(args, meta, data_dir))


def _torrent_and_folder(
    args: argparse.Namespace, path: Path, torrent_file: str | None
) -> tuple[Metainfo, Path]:
    """The torrent to seed and the folder that holds its payload (``folder/NAME``)."""
    if not path.exists():
        raise ConfigError(f"no such file or folder: {path}")
    if torrent_file is None and path.is_file() and path.suffix == ".torrent":
        meta = load_torrent(str(path))
        return meta, path.resolve().parent
    folder = path.resolve().parent
    if torrent_file is not None and Path(torrent_file).exists():
        meta = load_torrent(torrent_file)
        if meta.name != path.resolve().name:
            raise ConfigError(
                f"{torrent_file} is the torrent of {meta.name!r}, not of {path.resolve().name!r}"
            )
        return meta, folder
    meta = _create(args, path)
    if torrent_file is not None:
        from servent.cli.commands.create import write_atomically

        write_atomically(Path(torrent_file), meta.to_bytes())
        print(f"created {torrent_file}", file=sys.stderr)
    return meta, folder


def _create(args: argparse.Namespace, path: Path) -> Metainfo:
    """Hash ``path`` into a torrent and record every piece as verified.

    The resume record goes where seeding looks (the data directory, never the
    user's folder), so the seeder starts at once instead of hashing again.
    """
    from servent import __version__
    from servent.codec.metainfo.build import TorrentOptions
    from servent.storage.seed_resume import create_seeding_torrent, resume_key

    print(f"hashing {path} ...", file=sys.stderr, flush=True)
    options = TorrentOptions(created_by=f"servent {__version__}")
    meta, record = create_seeding_torrent(path, options=options)
    resume_store(args, path.resolve().parent, meta).save(resume_key(meta), record.encode())
    return meta


async def _seed(args: argparse.Namespace, meta: Metainfo, data_dir: Path) -> int:
    """Seed through a one-shot node (see :mod:`servent.node.one_shot`) until interrupted."""
    from servent import __version__
    from servent.node.one_shot import one_shot_node
    from servent.node.torrent_spec import SessionOptions

    host: str | None = args.host
    settings = {"listen_host": host or "", "listen_port": args.port, **transport_settings(args)}
    stop = asyncio.Event()
    with stop_on_signals(stop):
        async with (
            port_for(args, host, args.port) as reserved,  # one number for TCP, uTP and the DHT
            dht_for(args, host, args.port, reserved) as dht,  # announced in by the torrent
            one_shot_node(
                settings, client_version=__version__, dht=dht, swarm=discovery_config(args),
                reserved_port=reserved,
            ) as node,
        ):
            options = SessionOptions(
                resume_store=resume_store(args, data_dir, meta), raise_start_errors=True
            )
            added = await node.add_torrent(meta, data_dir, options=options)
            torrent = node.swarm_session(added.id)
            assert torrent is not None  # started, or add_torrent raised
            if not torrent.complete:
                stats = torrent.statistics()
                raise ConfigError(
                    f"the data in {data_dir / meta.name} does not match the torrent "
                    f"({stats.have_bytes} of {stats.wanted_bytes} bytes verify)"
                )
            _print_magnet(args, meta, node.listen_addresses())
            print(f"seeding {meta.name}; Ctrl-C to stop", file=sys.stderr, flush=True)
            await stop.wait()
    return 0


def _print_magnet(
    args: argparse.Namespace, meta: Metainfo, addresses: list[tuple[str, int]]
) -> None:
    """The listening addresses, then the magnet link with them as ``x.pe`` peers."""
    for address_host, address_port in addresses:
        print(f"listening on {format_address(address_host, address_port)}")
    port = addresses[0][1] if addresses else 0
    reachable = [(h, p) for h, p in addresses if h not in ("0.0.0.0", "::")] or [
        ("127.0.0.1", port)
    ]
    magnet = meta.to_magnet()
    trackers = tuple(dict.fromkeys((*magnet.trackers, *args.tracker)))
    magnet = dataclasses.replace(magnet, peers=tuple(reachable), trackers=trackers)
    print(magnet.to_uri(), flush=True)
