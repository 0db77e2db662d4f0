"""The disk work of synced versions, run in a thread (``docs/sync.md`` sections 4 and 6).

Applying a downloaded version: stored files are cut to the version's sizes,
then a key holder opens the files that changed into its folder (keeping every
original), and everyone drops stored files the version no longer has.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from servent.codec.sync_crypt import DATA_FOLDER, MANIFEST_NAME, SyncCipher, sealed_size
from servent.errors import NodeError
from servent.proto.sync_plan import RelPath, plan_changes
from servent.storage.sync_folder import apply_changes, folder_listing, folder_signature
from servent.storage.sync_store import open_file, prune_stored, read_manifest

__all__ = ["EMPTY_SIGNATURE", "apply_version", "folder_path", "signature_of", "store_version"]


def _cut_to_sizes(root: Path, wanted: dict[RelPath, int]) -> None:
    """A stored file kept from the last version may be longer than this version's:
    its first bytes are the verified ones, the rest is the old tail."""
    for rel, size in wanted.items():
        stored = root.joinpath(*rel)
        if stored.stat().st_size > size:
            with stored.open("r+b") as handle:
                handle.truncate(size)


def store_version(root: Path, wanted: dict[RelPath, int]) -> None:
    """An encrypted holder keeps exactly the version's files (paths under ``root``)."""
    _cut_to_sizes(root, wanted)
    prune_stored(root, {rel[1] for rel in wanted if len(rel) == 2 and rel[0] == DATA_FOLDER})


def apply_version(
    folder: Path,
    root: Path,
    wanted: dict[RelPath, int],
    cipher: SyncCipher,
    previous: dict[RelPath, bytes],
) -> tuple[dict[RelPath, bytes], bool]:
    """Make ``folder`` show the version stored at ``root``.

    Returns the version's listing and whether the folder holds more than it
    (conflict copies, files added here).
    """
    if (MANIFEST_NAME,) not in wanted:
        raise NodeError("a version without a manifest was refused")
    store_version(root, wanted)
    entries = read_manifest(root, cipher)
    for entry in entries.values():
        stored = (DATA_FOLDER, entry.file_id)
        if wanted.get(stored) != sealed_size(entry.size):
            raise NodeError(f"a version lacks the file {'/'.join(entry.path)!r}")
    new = {path: entry.digest for path, entry in entries.items()}
    changes = plan_changes(previous, folder_listing(folder), new)
    apply_changes(
        folder, lambda rel, temporary: open_file(root, cipher, entries[rel], temporary), changes
    )
    return new, folder_listing(folder) != new


def folder_path(folder: str | Path, make: bool) -> Path:
    """``folder`` made absolute (and made, if asked); it must be a folder."""
    path = Path(folder).expanduser().resolve()
    if make:
        path.mkdir(parents=True, exist_ok=True)
    if not path.is_dir():
        raise NodeError(f"{str(path)!r} is not a folder")
    return path


#: The signature of a folder without files.
EMPTY_SIGNATURE = hashlib.sha256(b"()").hexdigest()


def signature_of(path: Path) -> str:
    """A digest of every file's path, size and modification time: did the folder change."""
    return hashlib.sha256(repr(folder_signature(path)).encode()).hexdigest()
