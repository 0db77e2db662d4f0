"""What ``servent dht`` reads from its user: addresses, hashes, item targets, key files.

Each is checked before the command touches the network, so bad input is one
clear error line (a :class:`~servent.errors.ConfigError`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

from servent.errors import ConfigError

Address = tuple[str, int]


def parse_hostport(text: str) -> Address:
    """``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port)."""
    host, sep, port_text = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"not HOST:PORT: {text!r} (examples: 127.0.0.1:6881, [::1]:6881)")
    return host, int(port_text)


def parse_hash(text: str, what: str = "info-hash") -> bytes:
    """A 20-byte hash as 40 hex digits or 32 base32 characters."""
    try:
        if len(text) == 40:
            return bytes.fromhex(text)
        if len(text) == 32:
            return base64.b32decode(text.upper())
    except (ValueError, binascii.Error):
        pass
    raise ConfigError(f"not an {what}: {text!r} (40 hex digits or 32 base32 characters)")


def parse_item_target(text: str, salt: bytes) -> bytes:
    """A BEP 44 target: 40 hex digits as is, or sha1(public key + salt) from 64 hex digits."""
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raw = b""
    if len(raw) == 32:
        return hashlib.sha1(raw + salt).digest()
    if len(raw) == 20:
        return raw
    raise ConfigError(f"not a target or public key: {text!r} (40 or 64 hex digits)")


def read_key(path: Path) -> bytes:
    """A 32-byte ed25519 seed from KEYFILE (raw or hex); a missing file gets a fresh key."""
    if not path.exists():
        seed = os.urandom(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(seed.hex() + "\n")
        return seed
    data = path.read_bytes()
    if len(data) > 200:
        raise ConfigError(f"{path}: not a key file (expected 32 bytes or 64 hex digits)")
    if len(data) == 32:
        return data
    try:
        seed = bytes.fromhex(data.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        seed = b""
    if len(seed) != 32:
        raise ConfigError(f"{path}: not a key file (expected 32 bytes or 64 hex digits)")
    return seed
