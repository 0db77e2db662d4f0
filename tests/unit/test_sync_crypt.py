"""Encrypted versions: names and contents hidden, unchanged blocks unchanged, tampering refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from servent.codec.sync_crypt import (
    BLOCK_SIZE,
    DATA_FOLDER,
    MANIFEST_NAME,
    SEALED_BLOCK_SIZE,
    ManifestEntry,
    SyncCipher,
    SyncCryptError,
    sealed_size,
)
from servent.storage.sync_store import encrypt_version, open_file, read_manifest

SECRET = bytes(range(32))


def _stored(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_sealed_folder_hides_names_and_contents_and_opens_back(tmp_path: Path) -> None:
    folder, root = tmp_path / "folder", tmp_path / "root"
    (folder / "secret plans").mkdir(parents=True)
    files = {
        ("secret plans", "moon.txt"): b"land on the moon\n" * 1000,
        ("empty",): b"",
        ("big.bin",): os.urandom(3 * BLOCK_SIZE + 5),
    }
    for rel, data in files.items():
        folder.joinpath(*rel).write_bytes(data)
    cipher = SyncCipher(SECRET)
    listing = encrypt_version(folder, cipher, root)
    assert set(listing) == set(files)
    for name, data in _stored(root).items():
        for word in (b"moon", b"plans", b"big.bin", b"land on the"):
            assert word not in data and word.decode() not in name
    entries = read_manifest(root, cipher)
    for rel, data in files.items():
        assert (root / DATA_FOLDER / cipher.file_id(rel)).stat().st_size == sealed_size(len(data))
        open_file(root, cipher, entries[rel], tmp_path / "out")
        assert (tmp_path / "out").read_bytes() == data
    with pytest.raises(SyncCryptError):
        SyncCipher(bytes(32)).open_manifest((root / MANIFEST_NAME).read_bytes())


def test_a_one_byte_change_moves_one_sealed_block(tmp_path: Path) -> None:
    folder, root = tmp_path / "folder", tmp_path / "root"
    folder.mkdir()
    data = bytearray(os.urandom(10 * BLOCK_SIZE))
    (folder / "f").write_bytes(data)
    (folder / "same").write_bytes(b"never changes")
    cipher = SyncCipher(SECRET)
    encrypt_version(folder, cipher, root)
    before = _stored(root)
    data[4 * BLOCK_SIZE + 7] ^= 1
    (folder / "f").write_bytes(data)
    encrypt_version(folder, cipher, root)
    after = _stored(root)
    stored = f"{DATA_FOLDER}/{cipher.file_id(('f',))}"
    differing = [
        i
        for i in range(10)
        if before[stored][i * SEALED_BLOCK_SIZE : (i + 1) * SEALED_BLOCK_SIZE]
        != after[stored][i * SEALED_BLOCK_SIZE : (i + 1) * SEALED_BLOCK_SIZE]
    ]
    assert differing == [4]
    same = f"{DATA_FOLDER}/{cipher.file_id(('same',))}"
    assert before[same] == after[same]
    (folder / "f").unlink()  # a deleted file's stored form goes too
    encrypt_version(folder, cipher, root)
    assert stored not in _stored(root)


def test_a_tampered_file_or_manifest_is_refused(tmp_path: Path) -> None:
    folder, root = tmp_path / "folder", tmp_path / "root"
    folder.mkdir()
    (folder / "f").write_bytes(b"x" * 1000)
    cipher = SyncCipher(SECRET)
    encrypt_version(folder, cipher, root)
    entry = read_manifest(root, cipher)[("f",)]
    stored = root / DATA_FOLDER / cipher.file_id(("f",))
    sealed = bytearray(stored.read_bytes())
    sealed[20] ^= 1
    stored.write_bytes(sealed)
    with pytest.raises(SyncCryptError):
        open_file(root, cipher, entry, tmp_path / "out")
    stored.write_bytes(bytes(sealed[:10]))  # cut short
    with pytest.raises(SyncCryptError):
        open_file(root, cipher, entry, tmp_path / "out")
    wrong = ManifestEntry(("f",), 1000, bytes(32), cipher.file_id(("f",)))  # does not match
    encrypt_version(folder, cipher, root)
    with pytest.raises(SyncCryptError, match="does not match"):
        open_file(root, cipher, wrong, tmp_path / "out")
    with pytest.raises(SyncCryptError):
        cipher.open_manifest(b"\x00" * 40)


def test_a_stored_version_opens_into_a_folder_and_a_short_one_is_refused(tmp_path: Path) -> None:
    from servent.errors import NodeError
    from servent.node.sync_versions import apply_version

    source, root, folder = tmp_path / "source", tmp_path / "root", tmp_path / "folder"
    source.mkdir()
    folder.mkdir()
    (source / "a.txt").write_bytes(b"from the writer\n")
    (folder / "mine.txt").write_bytes(b"only here\n")
    cipher = SyncCipher(SECRET)
    listing = encrypt_version(source, cipher, root)
    wanted = {
        tuple(p.relative_to(root).parts): p.stat().st_size for p in root.rglob("*") if p.is_file()
    }
    assert apply_version(folder, root, wanted, cipher, {}) == (listing, True)
    assert (folder / "a.txt").read_bytes() == b"from the writer\n"
    assert (folder / "mine.txt").read_bytes() == b"only here\n"  # never touched
    for missing in [(MANIFEST_NAME,), (DATA_FOLDER, cipher.file_id(("a.txt",)))]:
        short = {k: v for k, v in wanted.items() if k != missing}
        with pytest.raises(NodeError):
            apply_version(folder, root, short, cipher, listing)
