"""Torrent files (BEP 3, 12, 19, 47, 52): the model, parsing and building.

``parse_torrent`` turns hostile bytes into a validated :class:`Metainfo`;
``build_info`` (in :mod:`.build`) turns file hashes into an info dictionary.
"""

from __future__ import annotations

from servent.codec.metainfo.model import FileEntry, Metainfo
from servent.codec.metainfo.parse import parse_info, parse_torrent
from servent.codec.metainfo.paths import check_path

__all__ = ["FileEntry", "Metainfo", "check_path", "parse_info", "parse_torrent"]
