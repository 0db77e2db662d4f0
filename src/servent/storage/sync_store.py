"""A share's encrypted copy on disk (``docs/sync.md`` section 6).

A version is a folder ``<share id>/`` holding ``manifest`` (the sealed file
list) and ``d/<file id>`` (each file sealed block by block).  Writers make it
from their folder, rewriting only blocks that changed so unchanged pieces
stay as they were; readers open files from it into their folder; encrypted
holders only store and seed it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

from servent.codec.sync_crypt import (
    BLOCK_SIZE,
    DATA_FOLDER,
    MANIFEST_NAME,
    SEALED_BLOCK_SIZE,
    TAG_SIZE,
    ManifestEntry,
    SyncCipher,
    SyncCryptError,
    sealed_size,
)
from servent.errors import DecodeError
from servent.proto.sync_plan import RelPath
from servent.storage.sync_folder import TEMPORARY_SUFFIX, iter_files

__all__ = ["encrypt_version", "open_file", "prune_stored", "read_manifest"]


def encrypt_version(folder: Path, cipher: SyncCipher, root: Path) -> dict[RelPath, bytes]:
    """Seal every file of ``folder`` into ``root``; the listing (path -> SHA-256) sealed.

    Digests are taken from the very bytes sealed, so a file changing meanwhile
    is listed as it was read.  A renamed or copied file keeps the stored name
    (file id) of its content, so its bytes stay where they are.  Stored files
    no entry names are removed; the manifest is replaced last, through a
    temporary file.
    """
    data = root / DATA_FOLDER
    data.mkdir(parents=True, exist_ok=True)
    ids = _FileIds(cipher, _last_entries(root, cipher))
    files = sorted(iter_files(folder), key=lambda f: (f[0] not in ids.last, f[0]))
    entries = [_seal_entry(rel, full, data, cipher, ids) for rel, full, _ in files]
    prune_stored(root, {e.file_id for e in entries})
    temporary = root / f"{MANIFEST_NAME}{TEMPORARY_SUFFIX}"
    temporary.write_bytes(cipher.seal_manifest(entries))
    os.replace(temporary, root / MANIFEST_NAME)
    return {e.path: e.digest for e in entries}


def _last_entries(root: Path, cipher: SyncCipher) -> dict[RelPath, ManifestEntry]:
    """The last version's entries, if its manifest is there and opens."""
    try:
        return read_manifest(root, cipher)
    except (OSError, DecodeError):
        return {}


class _FileIds:
    """Which stored name each file of a new version takes (``docs/sync.md`` section 6)."""

    def __init__(self, cipher: SyncCipher, last: dict[RelPath, ManifestEntry]) -> None:
        self.cipher = cipher
        self.last = last
        self.used: dict[str, bytes] = {}  # file id -> the content it holds in this version
        self._used_by_digest: dict[bytes, str] = {}
        self._last_by_digest: dict[bytes, list[str]] = {}
        for entry in last.values():
            self._last_by_digest.setdefault(entry.digest, []).append(entry.file_id)
        self._taken = {entry.file_id for entry in last.values()}

    def shared(self, digest: bytes) -> str | None:
        """A file id this version already holds ``digest`` in (a copy)."""
        return self._used_by_digest.get(digest)

    def for_new(self, rel: RelPath, digest: bytes) -> str:
        """A renamed file's old id if no path kept it, else a fresh one."""
        for file_id in self._last_by_digest.get(digest, ()):
            if file_id not in self.used:
                return file_id
        return self.cipher.fresh_file_id(rel, self._taken)

    def use(self, file_id: str, digest: bytes) -> None:
        self.used[file_id] = digest
        self._used_by_digest.setdefault(digest, file_id)
        self._taken.add(file_id)


def _seal_entry(
    rel: RelPath, full: Path, data: Path, cipher: SyncCipher, ids: _FileIds
) -> ManifestEntry:
    """Seal one file under the stored name it keeps, shares or takes over."""
    kept = ids.last.get(rel)
    if kept is not None and kept.file_id not in ids.used:
        file_id = kept.file_id  # an in-place edit rewrites only the blocks that changed
    else:
        digest, size = _hash_file(full)
        shared = ids.shared(digest)
        if shared is not None:  # a copy of a file sealed already: one stored file
            return ManifestEntry(rel, size, digest, shared)
        file_id = ids.for_new(rel, digest)
    digest, size = _seal_file(full, data / file_id, file_id, cipher)
    ids.use(file_id, digest)
    return ManifestEntry(rel, size, digest, file_id)


def _hash_file(path: Path) -> tuple[bytes, int]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        while block := handle.read(BLOCK_SIZE):
            digest.update(block)
            size += len(block)
    return digest.digest(), size


def _seal_file(source: Path, stored: Path, file_id: str, cipher: SyncCipher) -> tuple[bytes, int]:
    """Write the sealed form of ``source`` over ``stored``, touching only blocks that differ."""
    digest, size, index = hashlib.sha256(), 0, 0
    mode = "r+b" if stored.exists() else "w+b"
    with source.open("rb") as plain, stored.open(mode) as sealed_file:
        while block := plain.read(BLOCK_SIZE):
            digest.update(block)
            size += len(block)
            sealed = cipher.seal_block(file_id, index, block)
            offset = index * SEALED_BLOCK_SIZE
            sealed_file.seek(offset)
            if sealed_file.read(len(sealed)) != sealed:
                sealed_file.seek(offset)
                sealed_file.write(sealed)
            index += 1
        sealed_file.truncate(sealed_size(size))
    return digest.digest(), size


def read_manifest(root: Path, cipher: SyncCipher) -> dict[RelPath, ManifestEntry]:
    """The file list of the version stored at ``root``."""
    entries = cipher.open_manifest((root / MANIFEST_NAME).read_bytes())
    return {e.path: e for e in entries}


def open_file(root: Path, cipher: SyncCipher, entry: ManifestEntry, target: Path) -> None:
    """Write the plaintext of ``entry`` to ``target``; refuse it unless it is the one listed."""
    file_id = entry.file_id
    stored = root / DATA_FOLDER / file_id
    digest, size, index = hashlib.sha256(), 0, 0
    with stored.open("rb") as sealed_file, target.open("wb") as plain:
        while size < entry.size:
            sealed = sealed_file.read(min(SEALED_BLOCK_SIZE, sealed_size(entry.size - size)))
            if len(sealed) <= TAG_SIZE:
                break  # cut short: refused below
            block = cipher.open_block(file_id, index, sealed)
            digest.update(block)
            plain.write(block)
            size += len(block)
            index += 1
    if size != entry.size or digest.digest() != entry.digest:
        raise SyncCryptError(f"{'/'.join(entry.path)!r} does not match its version")


def prune_stored(root: Path, keep: Iterable[str]) -> None:
    """Remove stored files no version file names (the share deleted them)."""
    wanted = set(keep)
    data = root / DATA_FOLDER
    if data.is_dir():
        for child in data.iterdir():
            if child.name not in wanted and child.is_file():
                child.unlink()
