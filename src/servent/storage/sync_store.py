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
from servent.proto.sync_plan import RelPath
from servent.storage.sync_folder import TEMPORARY_SUFFIX, iter_files

__all__ = ["encrypt_version", "open_file", "prune_stored", "read_manifest"]


def encrypt_version(folder: Path, cipher: SyncCipher, root: Path) -> dict[RelPath, bytes]:
    """Seal every file of ``folder`` into ``root``; the listing (path -> SHA-256) sealed.

    Digests are taken from the very bytes sealed, so a file changing meanwhile
    is listed as it was read.  Stored files of paths gone from the folder are
    removed; the manifest is replaced last, through a temporary file.
    """
    data = root / DATA_FOLDER
    data.mkdir(parents=True, exist_ok=True)
    entries: list[ManifestEntry] = []
    for rel, full, _ in iter_files(folder):
        file_id = cipher.file_id(rel)
        digest, size = _seal_file(full, data / file_id, file_id, cipher)
        entries.append(ManifestEntry(rel, size, digest))
    prune_stored(root, {cipher.file_id(e.path) for e in entries})
    temporary = root / f"{MANIFEST_NAME}{TEMPORARY_SUFFIX}"
    temporary.write_bytes(cipher.seal_manifest(entries))
    os.replace(temporary, root / MANIFEST_NAME)
    return {e.path: e.digest for e in entries}


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
    file_id = cipher.file_id(entry.path)
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
