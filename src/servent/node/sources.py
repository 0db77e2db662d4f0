"""What users hand to ``Node.add`` and what the node stored: parsed into metainfo or magnet.

Kept apart from the node so the bounds (file size, magnet syntax, v2 piece
layers that peers supply) are in one small place.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from servent.errors import NodeError

if TYPE_CHECKING:
    from servent.codec.magnet import Magnet
    from servent.codec.metainfo import Metainfo

MAX_TORRENT_FILE = 64 * 1024 * 1024


def stored_metainfo(raw: bytes) -> Metainfo:
    """A stored torrent; one whose metadata came from peers may lack v2 piece layers
    (peers send those while downloading), which a .torrent file must have."""
    from servent.codec.bencode import decode_with_raw
    from servent.codec.metainfo import parse_torrent
    from servent.codec.metainfo.parse import parse_info
    from servent.errors import BencodeError, MetainfoError

    try:
        return parse_torrent(raw)
    except MetainfoError as exc:
        if "piece layers" not in str(exc):
            raise
    try:
        top, info_bytes = decode_with_raw(raw, (b"info",))
    except BencodeError as exc:
        raise MetainfoError(f"stored torrent unreadable: {exc}") from exc
    if not isinstance(top, dict) or info_bytes is None:
        raise MetainfoError("stored torrent has no 'info' dictionary")
    found = top.get(b"piece layers")
    layers = (
        {k: v for k, v in found.items() if isinstance(v, bytes)}
        if isinstance(found, dict)
        else None
    )
    return parse_info(info_bytes, layers)


def existing_payload(given: str | Path) -> Path:
    """The absolute path of a file or folder to share, which must exist."""
    path = Path(given).expanduser().resolve()
    if not path.is_dir() and not path.is_file():
        raise NodeError(f"{path}: no such file or folder")
    return path


def parse_source(
    source: bytes | str | Path | Metainfo,
) -> tuple[Metainfo | None, Magnet | None, bytes | None]:
    """Metainfo (with its bytes) or magnet from what a user handed to ``add`` (or the
    metainfo a one-shot command fetched for a magnet, v2 piece layers maybe not yet)."""
    from servent.codec.magnet import parse_magnet
    from servent.codec.metainfo import Metainfo, parse_torrent

    if isinstance(source, Metainfo):
        return source, None, source.to_bytes()
    if isinstance(source, str) and source.strip().lower().startswith("magnet:"):
        return None, parse_magnet(source.strip()), None
    if isinstance(source, str | Path):
        path = Path(source).expanduser()
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_TORRENT_FILE + 1)
        except OSError as exc:
            raise NodeError(f"cannot read torrent file {path}: {exc.strerror or exc}") from exc
    else:
        data = bytes(source)
    if len(data) > MAX_TORRENT_FILE:
        raise NodeError(f"torrent file larger than {MAX_TORRENT_FILE} bytes")
    return parse_torrent(data), None, data
