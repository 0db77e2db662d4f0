"""Resume data: which pieces are verified, and the file states they were verified against.

A :class:`ResumeRecord` is bencoded (versioned) and kept in a
:class:`ResumeStore`.  The default :class:`FileResumeStore` keeps one file per
torrent, ``DIR/.servent/<hex info-hash>.resume``, written crash-safely: temp
file, ``fsync``, ``os.replace``, ``fsync`` of the folder.  A kill -9 or power
cut therefore leaves either the old record or the new one, never a torn one.
The store speaks bytes so the daemon can keep the same records in sqlite.

Per file the record keeps ``(size, mtime_ns)`` as seen right after the
payload was flushed.  On reopen a file whose size or mtime differs was touched
since (by us after the last record, or behind our back), so only its pieces
are verified again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from servent.codec import bencode
from servent.errors import BencodeError, ResumeDataError

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MISSING = (-1, 0)
"""``(size, mtime_ns)`` of a file that does not exist."""

_LIMITS = bencode.Limits(max_length=64 * 1024 * 1024, max_depth=4, max_values=4_000_000)


class ResumeStore(Protocol):
    """Where resume records live: opaque bytes under a key (hex info-hash)."""

    def load(self, key: str) -> bytes | None: ...

    def save(self, key: str, data: bytes) -> None:
        """Store ``data`` atomically and durably before returning."""
        ...

    def delete(self, key: str) -> None: ...


@dataclass(frozen=True, slots=True)
class ResumeRecord:
    info_hash: bytes
    piece_length: int
    num_pieces: int
    have: bytes
    """The verified pieces as a BEP 3 bitfield."""
    file_states: tuple[tuple[int, int], ...]
    """Per file ``(size, mtime_ns)``; :data:`MISSING` if absent."""
    priorities: tuple[int, ...]

    def encode(self) -> bytes:
        return bencode.encode(
            {
                b"version": FORMAT_VERSION,
                b"info-hash": self.info_hash,
                b"piece-length": self.piece_length,
                b"num-pieces": self.num_pieces,
                b"have": self.have,
                b"files": [[size, mtime] for size, mtime in self.file_states],
                b"priorities": list(self.priorities),
            }
        )

    @classmethod
    def decode(cls, data: bytes) -> ResumeRecord:
        try:
            value = bencode.decode(data, _LIMITS)
        except BencodeError as exc:
            raise ResumeDataError(f"resume data is not valid bencode: {exc}") from exc
        if not isinstance(value, dict) or value.get(b"version") != FORMAT_VERSION:
            raise ResumeDataError("resume data has an unknown format")
        info_hash = value.get(b"info-hash")
        piece_length = value.get(b"piece-length")
        num_pieces = value.get(b"num-pieces")
        have = value.get(b"have")
        files = value.get(b"files")
        priorities = value.get(b"priorities")
        if not (
            isinstance(info_hash, bytes)
            and isinstance(piece_length, int)
            and isinstance(num_pieces, int)
            and isinstance(have, bytes)
            and isinstance(files, list)
            and isinstance(priorities, list)
        ):
            raise ResumeDataError("resume data misses a field")
        states: list[tuple[int, int]] = []
        for entry in files:
            if not (
                isinstance(entry, list)
                and len(entry) == 2
                and isinstance(entry[0], int)
                and isinstance(entry[1], int)
            ):
                raise ResumeDataError("resume data has a malformed file entry")
            states.append((entry[0], entry[1]))
        prios: list[int] = []
        for prio in priorities:
            if not isinstance(prio, int):
                raise ResumeDataError("resume data has a malformed priority")
            prios.append(prio)
        return cls(info_hash, piece_length, num_pieces, have, tuple(states), tuple(prios))


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so a crash leaves the old or the new content."""
    folder = path.parent
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class FileResumeStore:
    """Resume records as files ``<folder>/<key>.resume`` (default folder: DIR/.servent)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, key: str) -> Path:
        if not key or not all(c in "0123456789abcdef" for c in key):
            raise ResumeDataError(f"resume key must be lowercase hex, got {key!r}")
        return self.folder / f"{key}.resume"

    def load(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            return None

    def save(self, key: str, data: bytes) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(self._path(key), data)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()


class MemoryResumeStore:
    """A store in a dict: for tests and for torrents that must leave no trace."""

    def __init__(self) -> None:
        self.records: dict[str, bytes] = {}

    def load(self, key: str) -> bytes | None:
        return self.records.get(key)

    def save(self, key: str, data: bytes) -> None:
        self.records[key] = data

    def delete(self, key: str) -> None:
        self.records.pop(key, None)
