"""``servent get``: download a torrent from the peers given, verified, resumable.

It runs through a node like every front end (a one-shot node, see
:mod:`servent.node.one_shot`), watching the torrent's swarm session for its figures.

Exit status 0 only when every wanted piece is downloaded and verified (and,
with ``--seed``, after seeding was interrupted).  Running it again on the same
folder resumes: storage keeps a record of the verified pieces in the data
directory (``--data-dir``), never in the user's folder.  On a terminal
a live progress bar shows percent, rate, peers and ETA; otherwise one summary
line is printed at the end.  Helpers here are shared with ``servent seed``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from servent.cli import event_loop
from servent.cli.download_progress import ProgressDisplay, print_summary
from servent.cli.peer_sources import (
    add_discovery_arguments,
    dht_for,
    discovery_config,
    parse_peer,
    port_for,
    transport_settings,
)
from servent.errors import ConfigError, MetadataSourcesExhaustedError, ServentError

if TYPE_CHECKING:
    from servent.codec.magnet import Magnet
    from servent.codec.metainfo import Metainfo
    from servent.net.dht_driver import DhtDriver
    from servent.net.torrent_session import TorrentSession
    from servent.node.node import Node
    from servent.storage.resume import FileResumeStore

EXIT_INTERRUPTED = 130
#: How often the progress display is refreshed.
REFRESH = 0.25
#: Dial attempts per given peer before it counts as unreachable.
DIAL_ATTEMPTS = 3


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "get",
        help="download a torrent or magnet link",
        description="Download and verify a torrent (or a magnet link: its metadata is "
        "fetched from peers first) from the peers given with --peer, the torrent's "
        "trackers, the DHT (--bootstrap) and local discovery (--lsd). "
        "Run it again on the same folder to resume.",
    )
    parser.add_argument("torrent", metavar="TORRENT", help="the .torrent file or a magnet link")
    parser.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        default=".",
        help="folder to download into (default: current folder)",
    )
    parser.add_argument(
        "--peer",
        metavar="HOST:PORT",
        action="append",
        default=[],
        help="a peer to download from (repeatable; [IPv6]:PORT for IPv6)",
    )
    parser.add_argument(
        "--port",
        metavar="N",
        type=int,
        default=0,
        help="TCP port to accept peers on (default 0: any free port)",
    )
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="fetch pieces in order (for playing while downloading)",
    )
    parser.add_argument(
        "--seed",
        action="store_true",
        help="keep uploading to others after the download, until interrupted",
    )
    parser.add_argument(
        "--max-connections",
        metavar="N",
        type=int,
        default=50,
        help="peer connections at most (default 50)",
    )
    parser.add_argument(
        "--max-peers-per-ip",
        metavar="N",
        type=int,
        default=3,
        help="peer connections with one IP address at most (default 3)",
    )
    parser.add_argument(
        "--download-rate",
        metavar="BYTES/S",
        default=None,
        help="download limit, e.g. 500K or 2MiB (default: unlimited)",
    )
    parser.add_argument(
        "--upload-rate",
        metavar="BYTES/S",
        default=None,
        help="upload limit, e.g. 500K or 2MiB (default: unlimited)",
    )
    parser.add_argument(
        "--metadata-timeout",
        metavar="SECONDS",
        type=float,
        default=300.0,
        help="give up on a magnet link's metadata after this long (default 300)",
    )
    add_data_dir_argument(parser)
    add_discovery_arguments(parser)
    parser.set_defaults(func=run_get)


# ---------------------------------------------------------------- shared helpers


def add_data_dir_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="where resume records are kept, out of the download folder "
        "(default: $XDG_DATA_HOME/servent)",
    )


def resume_store(args: argparse.Namespace, destination: Path, meta: Metainfo) -> FileResumeStore:
    """The torrent's resume records in the data directory (never in the user's folder)."""
    from servent.node.config import default_data_dir
    from servent.node.private_files import private_directory
    from servent.storage.resume_location import resume_store_for
    from servent.storage.seed_resume import resume_key

    data_dir: Path = args.data_dir.expanduser() if args.data_dir else default_data_dir()
    private_directory(data_dir)
    return resume_store_for(data_dir, destination, resume_key(meta))


def parse_rate(text: str | None, flag: str) -> float | None:
    if text is None:
        return None
    from servent.cli.commands.create import parse_size

    try:
        value = parse_size(text)
    except ConfigError:
        raise ConfigError(f"{flag}: not a rate: {text!r} (examples: 500K, 2MiB)") from None
    return float(value) if value > 0 else None


def load_torrent(path: str) -> Metainfo:
    from servent.codec.metainfo import parse_torrent

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read torrent {path}: {exc.strerror or exc}") from None
    try:
        return parse_torrent(data)
    except ServentError as exc:
        raise ConfigError(f"{path} is not a valid torrent: {exc}") from None


def format_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` instead of killing the loop, so storage closes cleanly."""
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    try:
        yield None
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


# ---------------------------------------------------------------- get


def run_get(args: argparse.Namespace) -> int:
    peers = [parse_peer(text) for text in args.peer]
    magnet: Magnet | None = None
    meta: Metainfo | None = None
    if args.torrent.lower().startswith("magnet:"):
        from servent.codec.magnet import parse_magnet

        try:
            magnet = parse_magnet(args.torrent)
        except ServentError as exc:
            raise ConfigError(f"not a valid magnet link: {exc}") from None
    else:
        meta = load_torrent(args.torrent)
    if not 0 <= args.port < 65536:
        raise ConfigError(f"--port: {args.port} is not a port number (0 = any)")
    if args.dht_port is not None and not 0 <= args.dht_port < 65536:
        raise ConfigError(f"--dht-port: {args.dht_port} is not a port number")
    if args.max_connections < 1:
        raise ConfigError("--max-connections must be at least 1")
    if args.max_peers_per_ip < 1:
        raise ConfigError("--max-peers-per-ip must be at least 1")
    if args.metadata_timeout <= 0:
        raise ConfigError("--metadata-timeout must be positive")
    for text in args.bootstrap:
        parse_peer(text)
    download_rate = parse_rate(args.download_rate, "--download-rate")
    upload_rate = parse_rate(args.upload_rate, "--upload-rate")
    rates = {"download_rate": download_rate, "upload_rate": upload_rate}
    return event_loop.run(_get(args, meta=meta, magnet=magnet, peers=peers, **rates))


def _has_sources(args: argparse.Namespace, dht: DhtDriver | None, meta: Metainfo) -> bool:
    """Whether peers may still turn up from somewhere other than --peer."""
    trackers = (not args.no_trackers or bool(args.tracker)) and (
        bool(meta.trackers) or bool(args.tracker)
    )
    return trackers or (dht is not None and not meta.private) or args.lsd


def _node_settings(
    args: argparse.Namespace, download_rate: float | None, upload_rate: float | None
) -> dict[str, object]:
    """The one-shot node's settings from the flags (see :mod:`servent.node.one_shot`)."""
    return {
        "listen_port": args.port,
        "max_connections": args.max_connections,
        "max_peers_per_torrent": args.max_connections,
        "max_peers_per_ip": args.max_peers_per_ip,
        "download_rate_limit": int(download_rate or 0),
        "upload_rate_limit": int(upload_rate or 0),
        **transport_settings(args),
    }


async def _get(
    args: argparse.Namespace,
    *,
    meta: Metainfo | None,
    magnet: Magnet | None,
    peers: list[tuple[str, int]],
    download_rate: float | None,
    upload_rate: float | None,
) -> int:
    from servent import __version__
    from servent.node.one_shot import one_shot_node

    settings = _node_settings(args, download_rate, upload_rate)
    swarm = discovery_config(args)
    stop = asyncio.Event()
    started = time.monotonic()
    with stop_on_signals(stop):
        async with (
            port_for(args, None, args.port) as reserved,
            dht_for(args, None, args.port, reserved) as dht,
            one_shot_node(
                settings, client_version=__version__, dht=dht, swarm=swarm, reserved_port=reserved
            ) as node,
        ):
            if magnet is not None:
                meta = await _fetch_metadata(node, magnet, peers, args.metadata_timeout, stop)
                if meta is None:
                    print("servent: interrupted", file=sys.stderr)
                    return EXIT_INTERRUPTED
            assert meta is not None
            torrent = await _start(args, node, meta, peers)
            resumed = torrent.statistics().have_bytes
            sources = _has_sources(args, dht, meta)
            if not torrent.complete and not peers and magnet is None and not sources:
                raise ConfigError(
                    "no peers to download from: give --peer HOST:PORT (or --bootstrap, "
                    "--tracker, --lsd)"
                )
            if not await _download(meta, torrent, sources, stop):
                print("servent: interrupted; run again to resume", file=sys.stderr)
                return EXIT_INTERRUPTED
            print_summary(meta, torrent, Path(args.output), time.monotonic() - started, resumed)
            if args.seed:
                addresses = ", ".join(format_address(*a) for a in node.listen_addresses())
                print(f"seeding on {addresses}; Ctrl-C to stop", file=sys.stderr, flush=True)
                await stop.wait()
    return 0


async def _start(
    args: argparse.Namespace, node: Node, meta: Metainfo, peers: list[tuple[str, int]]
) -> TorrentSession:
    """Add the torrent to the node (resuming from the data directory's record) and run it."""
    from servent.node.torrent_spec import SessionOptions

    output = Path(args.output)
    options = SessionOptions(
        sequential=args.sequential,
        max_dial_failures=DIAL_ATTEMPTS,
        resume_store=resume_store(args, output, meta),
        raise_start_errors=True,
    )
    added = await node.add_torrent(meta, output, peers=peers, options=options)
    session = node.swarm_session(added.id)
    assert session is not None  # started, or add_torrent raised
    return session


async def _download(
    meta: Metainfo, torrent: TorrentSession, sources: bool, stop: asyncio.Event
) -> bool:
    """Until every wanted piece is verified (True) or the command is interrupted (False)."""
    with ProgressDisplay(meta.name, torrent) as display:
        while not torrent.complete:
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation
            # that comes as the torrent settles, and the download goes on.
            with contextlib.suppress(TimeoutError):  # a display refresh period
                async with asyncio.timeout(REFRESH):
                    await torrent.wait_settled()
            if torrent.error is not None:
                raise torrent.error
            display.update()
            if stop.is_set():
                return False
            if not torrent.complete and not sources and torrent.all_peers_failed():
                errors = "; ".join(torrent.known.errors()) or "no answer"
                raise ServentError(f"no peer could be reached ({errors})")
    return True


async def _fetch_metadata(
    node: Node,
    magnet: Magnet,
    peers: list[tuple[str, int]],
    within: float,
    stop: asyncio.Event,
) -> Metainfo | None:
    """The magnet's torrent, or None when interrupted."""
    name = magnet.display_name or magnet.wire_info_hash.hex()
    print(f"fetching the metadata of {name} ...", file=sys.stderr, flush=True)
    loop = asyncio.get_running_loop()
    # Both tasks are owned here: whichever is left is cancelled and awaited below.
    fetch = loop.create_task(node.fetch_metadata(magnet, peers=peers, timeout=within))
    interrupted = loop.create_task(stop.wait())
    try:
        await asyncio.wait([fetch, interrupted], return_when=asyncio.FIRST_COMPLETED)
    finally:
        interrupted.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await interrupted
        if not fetch.done():
            fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fetch
    if fetch.cancelled():  # interrupted: cancelled above before it finished
        return None
    try:
        meta = fetch.result()
    except MetadataSourcesExhaustedError as exc:
        raise MetadataSourcesExhaustedError(
            f"{exc}; to find more peers give --bootstrap HOST:PORT (DHT), --tracker URL or --lsd"
        ) from None
    print(f"metadata of {meta.name} verified ({len(meta.info_bytes)} bytes)",
          file=sys.stderr, flush=True)  # fmt: skip
    return meta
