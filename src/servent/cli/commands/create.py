"""``servent create``: make a torrent (hybrid v1+v2 by default) of a file or folder."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

from servent.errors import ConfigError

_UNITS = {"": 1, "k": 1024, "kib": 1024, "m": 1024**2, "mib": 1024**2, "g": 1024**3, "gib": 1024**3}


def parse_size(text: str) -> int:
    """``16384``, ``256K``, ``4MiB`` -> bytes (binary units)."""
    match = re.fullmatch(r"\s*(\d{1,12})\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise ConfigError(f"not a size: {text!r} (examples: 16384, 256K, 4MiB)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "create",
        help="create a .torrent of a file or folder and print its magnet link",
        description="Hash a file or folder and write a torrent (hybrid v1+v2 by default).",
    )
    parser.add_argument("path", metavar="PATH", help="file or folder to share")
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="where to write the torrent (default: ./NAME.torrent)",
    )
    parser.add_argument(
        "--piece-length",
        metavar="BYTES",
        type=str,
        default=None,
        help="power of two >= 16 KiB, e.g. 262144 or 256K (default: automatic)",
    )
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument(
        "--v1", dest="version", action="store_const", const="v1", help="BitTorrent v1 only (BEP 3)"
    )
    kind.add_argument(
        "--v2", dest="version", action="store_const", const="v2", help="BitTorrent v2 only (BEP 52)"
    )
    kind.add_argument(
        "--hybrid",
        dest="version",
        action="store_const",
        const="hybrid",
        help="v1 and v2 in one torrent (default)",
    )
    parser.add_argument(
        "--tracker",
        metavar="URL",
        action="append",
        default=[],
        help="announce URL (repeat for more; each is its own tier)",
    )
    parser.add_argument(
        "--web-seed",
        metavar="URL",
        action="append",
        default=[],
        help="web seed URL (BEP 19; repeatable)",
    )
    parser.add_argument("--private", action="store_true", help="set the private flag")
    parser.add_argument("--comment", metavar="TEXT", help="comment stored in the torrent")
    parser.add_argument(
        "--force", action="store_true", help="overwrite the output file if it exists"
    )
    parser.set_defaults(func=run_create, version="hybrid")


def run_create(args: argparse.Namespace) -> int:
    from servent import __version__
    from servent.codec.metainfo.build import TorrentOptions, TorrentVersion
    from servent.storage.torrent_creator import create_torrent

    source = Path(args.path)
    if not source.exists():
        raise ConfigError(f"no such file or folder: {args.path}")
    piece_length = parse_size(args.piece_length) if args.piece_length else None
    options = TorrentOptions(
        trackers=tuple((url,) for url in args.tracker),
        web_seeds=tuple(args.web_seed),
        private=args.private,
        comment=args.comment,
        created_by=f"servent {__version__}",
    )
    output = Path(args.output) if args.output else Path(f"{source.resolve().name}.torrent")
    if output.exists() and not (args.force or args.output):
        raise ConfigError(f"{output} exists; use -o FILE or --force")
    with _ProgressBar() as progress:
        meta = create_torrent(
            source,
            version=TorrentVersion(args.version),
            piece_length=piece_length,
            options=options,
            progress=progress,
        )
    write_atomically(output, meta.to_bytes())
    print(
        f"created {output} ({meta.total_length} bytes in {len(meta.payload_files)} file(s), "
        f"{meta.num_pieces} pieces of {meta.piece_length})",
        file=sys.stderr,
    )
    print(meta.magnet())
    return 0


def write_atomically(path: Path, data: bytes) -> None:
    """Write then rename, so a crash never leaves half a torrent file."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


class _ProgressBar:
    """A rich progress bar on a terminal; nothing when output is redirected."""

    def __init__(self) -> None:
        self._progress: object | None = None

    def __enter__(self) -> Callable[[int, int], None] | None:
        if not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        progress = Progress(
            "hashing",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            transient=True,
            console=Console(stderr=True),
        )
        progress.start()
        task = progress.add_task("hashing", total=None)
        self._progress = progress

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return update

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            from rich.progress import Progress

            assert isinstance(self._progress, Progress)
            self._progress.stop()
