"""How an encrypted version hides names and contents (``docs/sync.md`` section 6).

Pure functions, no I/O.  Every key comes from the share's read secret, which
read-only and read-write keys hold and encrypted keys do not.  Encryption is
deterministic (AES-SIV): a file that did not change encrypts to the same
bytes, and a changed block changes only its own encrypted block.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Container
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from servent.codec import bencode
from servent.errors import DecodeError

__all__ = [
    "BLOCK_SIZE",
    "DATA_FOLDER",
    "MANIFEST_NAME",
    "SEALED_BLOCK_SIZE",
    "ManifestEntry",
    "SyncCipher",
    "SyncCryptError",
    "sealed_size",
]

#: Plaintext bytes per encrypted block; each sealed block is 16 bytes longer.
BLOCK_SIZE = 64 * 1024
TAG_SIZE = 16
SEALED_BLOCK_SIZE = BLOCK_SIZE + TAG_SIZE
MANIFEST_NAME = "manifest"
DATA_FOLDER = "d"
MAX_MANIFEST_SIZE = 64 * 1024 * 1024
_MANIFEST_LIMITS = bencode.Limits(max_length=MAX_MANIFEST_SIZE)
_FILE_ID = re.compile(r"[0-9a-f]{32}")


class SyncCryptError(DecodeError):
    """An encrypted block or manifest does not open with this share's keys."""


def sealed_size(size: int) -> int:
    """The length of a file of ``size`` bytes once encrypted."""
    return size + TAG_SIZE * -(-size // BLOCK_SIZE)


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One file of a version: its path, size, SHA-256 (of the plaintext) and stored name."""

    path: tuple[str, ...]
    size: int
    digest: bytes
    file_id: str


def _derive(secret: bytes, info: bytes, length: int) -> bytes:
    return HKDF(hashes.SHA256(), length, None, b"servent-sync " + info).derive(secret)


class SyncCipher:
    """The keys of one share's read secret."""

    def __init__(self, read_secret: bytes) -> None:
        self._name_key = _derive(read_secret, b"name", 32)
        self._siv = AESSIV(_derive(read_secret, b"data", 64))

    def file_id(self, path: tuple[str, ...], attempt: int = 0) -> str:
        """A fresh stored name for the file at ``path``: a keyed hash that hides the path.

        ``attempt`` > 0 gives another one, for when the first is taken.
        """
        joined = "/".join(path).encode("utf-8")
        if attempt:
            joined += b"\x00" + str(attempt).encode()
        return hmac.new(self._name_key, joined, hashlib.sha256).hexdigest()[:32]

    def fresh_file_id(self, path: tuple[str, ...], taken: Container[str]) -> str:
        """The first of ``path``'s stored names that no other file uses."""
        attempt = 0
        while (candidate := self.file_id(path, attempt)) in taken:
            attempt += 1
        return candidate

    def seal_block(self, file_id: str, index: int, block: bytes) -> bytes:
        return self._siv.encrypt(block, [b"block", file_id.encode(), index.to_bytes(8, "big")])

    def open_block(self, file_id: str, index: int, sealed: bytes) -> bytes:
        try:
            return self._siv.decrypt(sealed, [b"block", file_id.encode(), index.to_bytes(8, "big")])
        except InvalidTag:
            raise SyncCryptError(f"block {index} of {file_id} does not open") from None

    def seal_manifest(self, entries: list[ManifestEntry]) -> bytes:
        """The version's file list, encrypted: the only place its names are written."""
        files: list[bencode.Encodable] = [
            [b"/".join(p.encode("utf-8") for p in e.path), e.size, e.digest, e.file_id.encode()]
            for e in sorted(entries, key=lambda e: e.path)
        ]
        return self._siv.encrypt(bencode.encode({b"files": files, b"v": 2}), [b"manifest"])

    def open_manifest(self, sealed: bytes) -> list[ManifestEntry]:
        if len(sealed) > MAX_MANIFEST_SIZE:
            raise SyncCryptError("the manifest is too large")
        try:
            plain = self._siv.decrypt(sealed, [b"manifest"])
        except InvalidTag:
            raise SyncCryptError("the manifest does not open with this share's key") from None
        return self._manifest_entries(bencode.decode(plain, _MANIFEST_LIMITS))

    def _manifest_entries(self, value: object) -> list[ManifestEntry]:
        if not isinstance(value, dict) or not isinstance(value.get(b"files"), list):
            raise SyncCryptError("a manifest is a dictionary with a 'files' list")
        # Version 1 (no file ids) named every file by its path's keyed hash.
        with_ids = value.get(b"v") != 1
        return [self._manifest_entry(item, with_ids) for item in value[b"files"]]

    def _manifest_entry(self, item: object, with_ids: bool) -> ManifestEntry:
        if (
            not isinstance(item, list)
            or len(item) != (4 if with_ids else 3)
            or not isinstance(item[0], bytes)
            or not isinstance(item[1], int)
            or item[1] < 0
            or not isinstance(item[2], bytes)
            or len(item[2]) != 32
        ):
            raise SyncCryptError("a manifest entry is [path, size, sha256, file id]")
        try:
            path = tuple(item[0].decode("utf-8").split("/"))
        except UnicodeDecodeError:
            raise SyncCryptError("a manifest path is UTF-8") from None
        if not with_ids:
            return ManifestEntry(path, item[1], item[2], self.file_id(path))
        stored = item[3]
        if not isinstance(stored, bytes) or not _FILE_ID.fullmatch(stored.decode("latin-1")):
            raise SyncCryptError("a manifest file id is 32 lowercase hex digits")
        return ManifestEntry(path, item[1], item[2], stored.decode("ascii"))
