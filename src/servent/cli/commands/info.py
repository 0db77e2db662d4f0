"""``servent info``: describe a torrent file or a magnet link (text or ``--json``)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from servent.errors import ConfigError, MetainfoError

#: Torrent files larger than this are refused before reading (the bencode bound).
MAX_TORRENT_FILE_BYTES = 64 * 1024 * 1024


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "info",
        help="show what a .torrent file or magnet link describes",
        description="Show name, info-hashes, size, files, trackers and the magnet link.",
    )
    parser.add_argument("source", metavar="TORRENT_OR_MAGNET")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run_info)


def describe(source: str) -> dict[str, Any]:
    """The facts about a torrent file or magnet link, as JSON-ready values."""
    if source.lower().startswith("magnet:"):
        from servent.codec.magnet import parse_magnet

        magnet = parse_magnet(source)
        return {
            "name": magnet.display_name,
            "info_hash_v1": magnet.info_hash_v1.hex() if magnet.info_hash_v1 else None,
            "info_hash_v2": magnet.info_hash_v2.hex() if magnet.info_hash_v2 else None,
            "total_size": None,
            "piece_length": None,
            "num_pieces": None,
            "files": [],
            "trackers": list(magnet.trackers),
            "web_seeds": list(magnet.web_seeds),
            "peers": [f"{host}:{port}" for host, port in magnet.peers],
            "select_only": list(magnet.select_only),
            "private": None,
            "magnet": magnet.to_uri(),
        }
    from servent.codec.metainfo import parse_torrent

    size = os.stat(source).st_size
    if size > MAX_TORRENT_FILE_BYTES:
        raise ConfigError(f"{source}: {size} bytes is too large for a torrent file")
    with open(source, "rb") as handle:
        data = handle.read(MAX_TORRENT_FILE_BYTES + 1)
    try:
        meta = parse_torrent(data)
    except MetainfoError as exc:
        raise type(exc)(f"{source}: {exc}") from exc
    return {
        "name": meta.name,
        "info_hash_v1": meta.info_hash_v1.hex() if meta.info_hash_v1 else None,
        "info_hash_v2": meta.info_hash_v2.hex() if meta.info_hash_v2 else None,
        "total_size": meta.total_length,
        "piece_length": meta.piece_length,
        "num_pieces": meta.num_pieces,
        "files": [{"path": "/".join(f.path), "size": f.length} for f in meta.payload_files],
        "trackers": [url for tier in meta.trackers for url in tier],
        "tracker_tiers": [list(tier) for tier in meta.trackers],
        "web_seeds": list(meta.web_seeds),
        "private": meta.private,
        "comment": meta.comment,
        "created_by": meta.created_by,
        "creation_date": meta.creation_date,
        "magnet": meta.magnet(),
    }


def run_info(args: argparse.Namespace) -> int:
    facts = describe(args.source)
    if args.json:
        print(json.dumps(facts, ensure_ascii=False))
        return 0
    lines = [f"name:          {facts['name']}"]
    for key, label in (("info_hash_v1", "info-hash v1"), ("info_hash_v2", "info-hash v2")):
        if facts[key]:
            lines.append(f"{label + ':':<15}{facts[key]}")
    if facts["total_size"] is not None:
        lines.append(f"total size:    {facts['total_size']} bytes ({_human(facts['total_size'])})")
        lines.append(f"piece length:  {facts['piece_length']} ({facts['num_pieces']} pieces)")
        lines.append(f"private:       {'yes' if facts['private'] else 'no'}")
    if facts.get("comment"):
        lines.append(f"comment:       {facts['comment']}")
    for url in facts["trackers"]:
        lines.append(f"tracker:       {url}")
    for url in facts["web_seeds"]:
        lines.append(f"web seed:      {url}")
    for peer in facts.get("peers", []):
        lines.append(f"peer:          {peer}")
    if facts["files"]:
        lines.append(f"files ({len(facts['files'])}):")
        lines.extend(f"  {f['size']:>14}  {f['path']}" for f in facts["files"])
    lines.append(f"magnet:        {facts['magnet']}")
    print("\n".join(lines))
    return 0


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{size} B"
        value /= 1024
    return f"{size} B"  # pragma: no cover
