"""What storage needs from a torrent, and its per-file bookkeeping.

Storage types against these protocols rather than ``Metainfo`` itself so the
seam stays narrow (``servent.codec.metainfo.Metainfo`` satisfies them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from servent.storage.paths import part_path

DEFAULT_PRIORITY = 1


class StorageFile(Protocol):
    @property
    def path(self) -> tuple[str, ...]: ...

    @property
    def length(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def pad(self) -> bool: ...

    @property
    def pieces_root(self) -> bytes | None: ...


class StorageMetainfo(Protocol):
    """What storage needs from ``servent.codec.metainfo.Metainfo``."""

    @property
    def name(self) -> str: ...

    @property
    def piece_length(self) -> int: ...

    @property
    def files(self) -> Sequence[StorageFile]: ...

    @property
    def num_pieces(self) -> int: ...

    @property
    def piece_hashes(self) -> Sequence[bytes]: ...

    @property
    def piece_layers(self) -> Mapping[bytes, bytes]: ...

    @property
    def info_hash_v1(self) -> bytes | None: ...

    @property
    def info_hash_v2(self) -> bytes | None: ...


@dataclass(slots=True)
class FileState:
    """One payload file as storage tracks it."""

    final: Path
    length: int
    pad: bool
    pieces: range
    missing: int = 0
    """Pieces overlapping this file that are not verified yet."""
    priority: int = DEFAULT_PRIORITY
    created: bool = False
    """The file (or its folder) exists on disk, so a write may open it directly."""

    @property
    def part(self) -> Path:
        return part_path(self.final)

    @property
    def real(self) -> bool:
        return not self.pad and self.length > 0
