"""Renamed and copied files keep their stored bytes (``docs/sync.md`` section 6)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from servent.codec import bencode
from servent.codec.sync_crypt import (
    BLOCK_SIZE,
    DATA_FOLDER,
    MANIFEST_NAME,
    ManifestEntry,
    SyncCipher,
    SyncCryptError,
)
from servent.storage.sync_store import encrypt_version, open_file, read_manifest

SECRET = bytes(range(32))


def _stored(root: Path) -> dict[str, bytes]:
    data = root / DATA_FOLDER
    return {p.name: p.read_bytes() for p in data.iterdir()}


def _opened(root: Path, cipher: SyncCipher, out: Path) -> dict[str, bytes]:
    opened = {}
    for rel, entry in read_manifest(root, cipher).items():
        open_file(root, cipher, entry, out)
        opened["/".join(rel)] = out.read_bytes()
    return opened


def test_a_renamed_file_keeps_its_stored_bytes(tmp_path: Path) -> None:
    folder, root = tmp_path / "folder", tmp_path / "root"
    (folder / "sub").mkdir(parents=True)
    big = os.urandom(5 * BLOCK_SIZE + 3)
    (folder / "old name.bin").write_bytes(big)
    (folder / "other").write_bytes(b"other")
    cipher = SyncCipher(SECRET)
    encrypt_version(folder, cipher, root)
    before = _stored(root)
    (folder / "old name.bin").rename(folder / "sub" / "new name.bin")
    listing = encrypt_version(folder, cipher, root)
    assert ("old name.bin",) not in listing and ("sub", "new name.bin") in listing
    assert _stored(root) == before  # same stored names, same bytes: only the manifest changed
    opened = _opened(root, cipher, tmp_path / "out")
    assert opened == {"sub/new name.bin": big, "other": b"other"}


def test_copies_share_one_stored_file_until_one_is_edited(tmp_path: Path) -> None:
    folder, root = tmp_path / "folder", tmp_path / "root"
    folder.mkdir()
    data = os.urandom(3 * BLOCK_SIZE)
    (folder / "a").write_bytes(data)
    cipher = SyncCipher(SECRET)
    encrypt_version(folder, cipher, root)
    before = _stored(root)
    (folder / "b").write_bytes(data)
    (folder / "c").write_bytes(data)
    encrypt_version(folder, cipher, root)
    assert _stored(root) == before
    entries = read_manifest(root, cipher)
    assert entries[("a",)].file_id == entries[("b",)].file_id == entries[("c",)].file_id
    edited = b"edited " + data[7:]
    (folder / "a").write_bytes(edited)
    encrypt_version(folder, cipher, root)
    entries = read_manifest(root, cipher)
    assert entries[("b",)].file_id == entries[("c",)].file_id != entries[("a",)].file_id
    assert len(_stored(root)) == 2
    assert _opened(root, cipher, tmp_path / "out") == {"a": edited, "b": data, "c": data}
    (folder / "a").unlink()  # the id of a renamed-away path is free for a new file there
    (folder / "b").rename(folder / "a")
    (folder / "c").write_bytes(b"new c")
    encrypt_version(folder, cipher, root)
    assert _opened(root, cipher, tmp_path / "out") == {"a": data, "c": b"new c"}
    assert len(_stored(root)) == 2


def test_a_version_1_manifest_still_opens_and_a_bad_file_id_is_refused(tmp_path: Path) -> None:
    folder, root = tmp_path / "folder", tmp_path / "root"
    folder.mkdir()
    (folder / "f.txt").write_bytes(b"written by an older node")
    cipher = SyncCipher(SECRET)
    encrypt_version(folder, cipher, root)
    entry = read_manifest(root, cipher)[("f.txt",)]
    assert entry.file_id == cipher.file_id(("f.txt",))
    siv = cipher._siv  # the older format, written as older nodes wrote it
    old = bencode.encode({b"files": [[b"f.txt", entry.size, entry.digest]], b"v": 1})
    (root / MANIFEST_NAME).write_bytes(siv.encrypt(old, [b"manifest"]))
    assert read_manifest(root, cipher)[("f.txt",)] == entry
    for bad in (b"../../etc/passwd", b"A" * 32, b"0" * 31):
        hostile = [[b"f.txt", entry.size, entry.digest, bad]]
        sealed = siv.encrypt(bencode.encode({b"files": hostile, b"v": 2}), [b"manifest"])
        with pytest.raises(SyncCryptError, match="file id"):
            cipher.open_manifest(sealed)
    listed = [ManifestEntry(("f.txt",), entry.size, entry.digest, "ab" * 16)]
    assert cipher.open_manifest(cipher.seal_manifest(listed)) == listed
