"""``servent start`` (what plain ``servent`` runs): for now, a demonstration.

It writes a small sample folder into the data directory, makes a hybrid
torrent of it and prints its magnet link.  A later issue turns this command
into starting the node daemon.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

SAMPLE_FILES = {
    "README.txt": "This folder was shared by servent, a peer-to-peer node.\n",
    "notes/hello.txt": "Hello from servent!\n" * 64,
    "notes/ünïcødé.txt": "Names in any script work: 日本語, Ελληνικά, русский.\n",
    "data/numbers.bin": None,  # generated: 100 KiB, not a multiple of the piece length
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "start",
        help="run servent's main job (default; for now a demo: share a sample folder)",
        description="Create a sample folder, make a hybrid torrent of it, print its magnet link.",
    )
    parser.add_argument("--data-dir", metavar="DIR", default=None,
                        help="where to put the sample (default: $XDG_DATA_HOME/servent)")
    parser.set_defaults(func=run_start)


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(base) / "servent"


def write_sample(folder: Path) -> None:
    for rel, text in SAMPLE_FILES.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if text is None:
            path.write_bytes(bytes(i * 7 % 251 for i in range(100 * 1024)))
        else:
            path.write_text(text, encoding="utf-8")


def run_start(args: argparse.Namespace) -> int:
    from servent import __version__
    from servent.cli.commands.create import write_atomically
    from servent.codec.metainfo.build import TorrentOptions
    from servent.storage.torrent_creator import create_torrent

    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError:
        data_dir = Path(tempfile.mkdtemp(prefix="servent-"))
    sample = data_dir / "sample"
    write_sample(sample)
    meta = create_torrent(sample, options=TorrentOptions(created_by=f"servent {__version__}"))
    torrent_path = data_dir / "sample.torrent"
    write_atomically(torrent_path, meta.to_bytes())
    print(f"servent {__version__}: shared the sample folder {sample}", file=sys.stderr)
    print(f"torrent: {torrent_path} ({meta.total_length} bytes, hybrid v1+v2)", file=sys.stderr)
    print(meta.magnet())
    return 0
