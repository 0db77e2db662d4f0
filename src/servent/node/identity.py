"""The node's Ed25519 identity: made on first start, kept in the data directory.

The key file (``identity.key``, PKCS#8 PEM, mode 0600) is the node's only
long-term secret: the node ID is its public key.  It is written to a
temporary file and linked into place, so a crash never leaves half a key and
two processes starting at once agree on one key.  An unreadable key file is
an error, never silently replaced: a new key would be a new node.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.codec.node_id import format_node_id
from servent.errors import ServentError
from servent.node.private_files import private_directory, private_file

__all__ = [
    "IDENTITY_FILE",
    "IdentityError",
    "NodeIdentity",
    "format_address",
    "identity_record",
    "load_or_create_identity",
]

log = logging.getLogger(__name__)

IDENTITY_FILE = "identity.key"
MAX_KEY_FILE = 4096


class IdentityError(ServentError):
    """The identity key file cannot be read, or holds something that is not an Ed25519 key."""


@dataclass(frozen=True)
class NodeIdentity:
    """The node's key pair; ``public_key`` (32 bytes) is what other nodes know it by."""

    private_key: Ed25519PrivateKey = field(repr=False)
    public_key: bytes

    @classmethod
    def from_private_key(cls, private_key: Ed25519PrivateKey) -> NodeIdentity:
        public = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return cls(private_key, public)

    @classmethod
    def generate(cls) -> NodeIdentity:
        return cls.from_private_key(Ed25519PrivateKey.generate())

    @property
    def node_id(self) -> str:
        """The printable node ID (base32 with a checksum)."""
        return format_node_id(self.public_key)

    def sign(self, data: bytes) -> bytes:
        return self.private_key.sign(data)


def load_or_create_identity(data_dir: Path) -> NodeIdentity:
    """The identity stored in ``data_dir``, made and saved first if there is none."""
    path = data_dir / IDENTITY_FILE
    private_directory(data_dir)
    if path.exists():
        private_file(path)  # a key readable by others (copied in by hand) is tightened
    else:
        created = NodeIdentity.generate()
        if _write_new(path, created):
            log.info("created node identity %s in %s", created.node_id, path)
            return created
    return _read(path)


def _pem(identity: NodeIdentity) -> bytes:
    return identity.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_new(path: Path, identity: NodeIdentity) -> bool:
    """Write the key file unless one appeared meanwhile; False when another process won."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(_pem(identity))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        try:
            os.link(temporary, path)  # unlike rename, never replaces an existing key
        except FileExistsError:
            return False
        _sync_directory(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: Path) -> NodeIdentity:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_KEY_FILE + 1)
    except OSError as exc:
        raise IdentityError(f"cannot read the node identity {path}: {exc.strerror}") from exc
    if len(data) > MAX_KEY_FILE:
        raise IdentityError(f"{path} is too large to be a node key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise IdentityError(f"{path} is not a readable private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IdentityError(f"{path} holds a {type(key).__name__}, not an Ed25519 key")
    if path.stat().st_mode & 0o077:
        log.warning("%s is readable by other users; it should be mode 0600", path)
    return NodeIdentity.from_private_key(key)


def format_address(host: str, port: int) -> str:
    """``host:port``, with brackets around an IPv6 address."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def identity_record(
    identity: NodeIdentity, name: str | None, addresses: list[tuple[str, int]]
) -> dict[str, object]:
    """What ``servent id --json`` and ``GET /api/identity`` show."""
    unique = list(dict.fromkeys(format_address(host, port) for host, port in addresses))
    return {"id": identity.node_id, "name": name, "addresses": unique}
