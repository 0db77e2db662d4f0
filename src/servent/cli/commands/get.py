"""``servent get``: download a torrent from the peers given, verified, resumable.

Exit status 0 only when every wanted piece is downloaded and verified (and,
with ``--seed``, after seeding was interrupted).  Running it again on the same
folder resumes: storage keeps a record of the verified pieces.  On a terminal
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

from servent.errors import ConfigError, ServentError

if TYPE_CHECKING:
    from servent.codec.metainfo import Metainfo
    from servent.net.torrent_session import TorrentSession

EXIT_INTERRUPTED = 130
#: How often the progress display is refreshed.
REFRESH = 0.25
#: Dial attempts per given peer before it counts as unreachable.
DIAL_ATTEMPTS = 3


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "get",
        help="download a torrent from the given peers",
        description="Download and verify a torrent from the peers given with --peer. "
        "Run it again on the same folder to resume.",
    )
    parser.add_argument("torrent", metavar="TORRENT", help="the .torrent file")
    parser.add_argument("-o", "--output", metavar="DIR", default=".",
                        help="folder to download into (default: current folder)")
    parser.add_argument("--peer", metavar="HOST:PORT", action="append", default=[],
                        help="a peer to download from (repeatable; [IPv6]:PORT for IPv6)")
    parser.add_argument("--port", metavar="N", type=int, default=0,
                        help="TCP port to accept peers on (default 0: any free port)")
    parser.add_argument("--sequential", action="store_true",
                        help="fetch pieces in order (for playing while downloading)")
    parser.add_argument("--seed", action="store_true",
                        help="keep uploading to others after the download, until interrupted")
    parser.add_argument("--max-connections", metavar="N", type=int, default=50,
                        help="peer connections at most (default 50)")
    parser.add_argument("--download-rate", metavar="BYTES/S", default=None,
                        help="download limit, e.g. 500K or 2MiB (default: unlimited)")
    parser.add_argument("--upload-rate", metavar="BYTES/S", default=None,
                        help="upload limit, e.g. 500K or 2MiB (default: unlimited)")
    parser.set_defaults(func=run_get)


# ---------------------------------------------------------------- shared helpers


def parse_peer(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPv6]:PORT`` -> ``(host, port)``."""
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"not a peer address: {text!r} (expected HOST:PORT or [IPv6]:PORT)")
    return host, int(port_text)


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


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.1f} GiB"


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


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Whether ``event`` got set within ``seconds`` (a timed refresh, not synchronisation)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
    return event.is_set()


class ProgressDisplay:
    """A rich progress bar on stderr's terminal; nothing when not a terminal."""

    def __init__(self, name: str, torrent: TorrentSession) -> None:
        self.name = name
        self.torrent = torrent
        self._progress: object | None = None
        self._task: object | None = None

    def __enter__(self) -> ProgressDisplay:
        if not sys.stderr.isatty():
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
            TransferSpeedColumn(), TextColumn("{task.fields[peers]} peers"),
            TimeRemainingColumn(), console=Console(stderr=True), transient=False,
        )  # fmt: skip
        progress.start()
        stats = self.torrent.statistics()
        self._task = progress.add_task(
            self.name, total=stats.wanted_bytes, completed=stats.have_bytes, peers=stats.peers
        )
        self._progress = progress
        return self

    def update(self) -> None:
        if self._progress is None:
            return
        from rich.progress import Progress, TaskID

        assert isinstance(self._progress, Progress)
        stats = self.torrent.statistics()
        task = TaskID(int(self._task))  # type: ignore[call-overload]
        self._progress.update(task, completed=stats.have_bytes, peers=stats.peers)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            from rich.progress import Progress

            self.update()
            assert isinstance(self._progress, Progress)
            self._progress.stop()


# ---------------------------------------------------------------- get


def run_get(args: argparse.Namespace) -> int:
    peers = [parse_peer(text) for text in args.peer]
    meta = load_torrent(args.torrent)
    if not 0 <= args.port < 65536:
        raise ConfigError(f"--port: {args.port} is not a port number (0 = any)")
    if args.max_connections < 1:
        raise ConfigError("--max-connections must be at least 1")
    download_rate = parse_rate(args.download_rate, "--download-rate")
    upload_rate = parse_rate(args.upload_rate, "--upload-rate")
    return asyncio.run(_get(args, meta, peers, download_rate, upload_rate))


async def _get(
    args: argparse.Namespace,
    meta: Metainfo,
    peers: list[tuple[str, int]],
    download_rate: float | None,
    upload_rate: float | None,
) -> int:
    from servent.net.engine import EngineConfig, SwarmEngine
    from servent.net.torrent_session import TorrentConfig

    output = Path(args.output)
    config = EngineConfig(
        listen_port=args.port,
        max_connections=args.max_connections,
        download_rate=download_rate,
        upload_rate=upload_rate,
    )
    torrent_config = TorrentConfig(
        max_connections=args.max_connections,
        sequential=args.sequential,
        max_dial_failures=DIAL_ATTEMPTS,
    )
    stop = asyncio.Event()
    started = time.monotonic()
    with stop_on_signals(stop):
        async with SwarmEngine(config) as engine:
            torrent = await engine.add_torrent(meta, output, config=torrent_config, peers=peers)
            resumed = torrent.statistics().have_bytes
            if not torrent.complete and not peers:
                raise ConfigError("no peers to download from: give --peer HOST:PORT")
            with ProgressDisplay(meta.name, torrent) as display:
                while not torrent.complete:
                    with contextlib.suppress(TimeoutError):  # a display refresh period
                        await asyncio.wait_for(torrent.wait_settled(), REFRESH)
                    if torrent.error is not None:
                        raise torrent.error
                    display.update()
                    if stop.is_set():
                        print("servent: interrupted; run again to resume", file=sys.stderr)
                        return EXIT_INTERRUPTED
                    if not torrent.complete and torrent.all_peers_failed():
                        errors = "; ".join(torrent.known.errors()) or "no answer"
                        raise ServentError(f"no peer could be reached ({errors})")
            _print_summary(meta, torrent, output, time.monotonic() - started, resumed)
            if args.seed:
                addresses = ", ".join(format_address(*a) for a in engine.listen_addresses)
                print(f"seeding on {addresses}; Ctrl-C to stop", file=sys.stderr, flush=True)
                await stop.wait()
    return 0


def _print_summary(
    meta: Metainfo, torrent: TorrentSession, output: Path, elapsed: float, resumed: int
) -> None:
    stats = torrent.statistics()
    fetched = stats.have_bytes - resumed
    rate = fetched / elapsed if elapsed > 0 else 0.0
    sources = sum(1 for count in stats.downloaded_from.values() if count)
    extra = f", {format_bytes(resumed)} resumed" if resumed else ""
    print(
        f"{meta.name}: {format_bytes(stats.have_bytes)} verified in {output} "
        f"({format_bytes(fetched)} in {elapsed:.1f} s, {format_bytes(rate)}/s, "
        f"from {sources} peer(s){extra})",
        flush=True,
    )
