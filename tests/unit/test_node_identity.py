"""Node IDs (base32 + checksum) and the identity key file in the data directory."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from servent.codec.node_id import NODE_ID_LENGTH, NodeIdError, format_node_id, parse_node_id
from servent.errors import ConfigError
from servent.node.config import load_config
from servent.node.identity import (
    IDENTITY_FILE,
    IdentityError,
    NodeIdentity,
    identity_record,
    load_or_create_identity,
)

KEY = bytes(range(32))


def test_node_id_round_trips_in_either_case_and_with_spaces() -> None:
    text = format_node_id(KEY)
    assert len(text) == NODE_ID_LENGTH and text == text.lower()
    assert parse_node_id(text) == KEY
    assert parse_node_id(f"  {text.upper()}\n") == KEY


def test_a_mistyped_character_fails_the_checksum() -> None:
    text = format_node_id(KEY)
    typo = text[:10] + ("a" if text[10] != "a" else "b") + text[11:]
    with pytest.raises(NodeIdError, match="checksum"):
        parse_node_id(typo)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "55 characters, got 0"),
        ("abc", "55 characters, got 3"),
        ("a" * 54 + "1", "only a-z and 2-7, found '1'"),
        ("a" * 54 + "!", "only a-z and 2-7"),
        ("x" * 200, "55 characters, got 200"),
    ],
)
def test_bad_ids_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(NodeIdError, match=message):
        parse_node_id(text)


def test_stray_bits_in_the_last_character_are_refused() -> None:
    text = format_node_id(KEY)
    last = "abcdefghijklmnopqrstuvwxyz234567".index(text[-1])
    changed = text[:-1] + "abcdefghijklmnopqrstuvwxyz234567"[last | 1]
    assert changed != text  # 3 spare bits: the last character only carries 2
    with pytest.raises(NodeIdError):
        parse_node_id(changed)


def test_format_refuses_a_key_of_the_wrong_size() -> None:
    with pytest.raises(NodeIdError, match="32 bytes"):
        format_node_id(b"short")


def test_identity_is_created_once_with_mode_0600_and_kept(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    first = load_or_create_identity(data_dir)
    key_file = data_dir / IDENTITY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    before = key_file.read_bytes()
    again = load_or_create_identity(data_dir)
    assert again.public_key == first.public_key
    assert key_file.read_bytes() == before
    assert [p.name for p in data_dir.iterdir()] == [IDENTITY_FILE]  # no temporary left


def test_identity_signs_with_its_public_key(tmp_path: Path) -> None:
    identity = load_or_create_identity(tmp_path)
    signature = identity.sign(b"hello")
    Ed25519PublicKey.from_public_bytes(identity.public_key).verify(signature, b"hello")
    assert parse_node_id(identity.node_id) == identity.public_key
    assert "private_key" not in repr(identity)


def test_a_corrupt_key_file_is_an_error_and_is_never_replaced(tmp_path: Path) -> None:
    key_file = tmp_path / IDENTITY_FILE
    key_file.write_bytes(b"-----BEGIN PRIVATE KEY-----\ngarbage\n")
    with pytest.raises(IdentityError, match="not a readable private key"):
        load_or_create_identity(tmp_path)
    assert key_file.read_bytes() == b"-----BEGIN PRIVATE KEY-----\ngarbage\n"


def test_a_huge_or_foreign_key_file_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / IDENTITY_FILE
    key_file.write_bytes(os.urandom(10_000))
    with pytest.raises(IdentityError, match="too large"):
        load_or_create_identity(tmp_path)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    other = X25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    key_file.write_bytes(other)
    with pytest.raises(IdentityError, match="not an Ed25519 key"):
        load_or_create_identity(tmp_path)


def test_a_key_file_that_appears_meanwhile_wins(tmp_path: Path) -> None:
    """Two processes starting at once: the second one's key never replaces the first's."""
    from servent.node import identity as module

    winner = NodeIdentity.generate()
    assert module._write_new(tmp_path / IDENTITY_FILE, winner) is True
    assert module._write_new(tmp_path / IDENTITY_FILE, NodeIdentity.generate()) is False
    assert load_or_create_identity(tmp_path).public_key == winner.public_key


def test_identity_record_lists_unique_addresses() -> None:
    identity = NodeIdentity.generate()
    record = identity_record(identity, "ann", [("1.2.3.4", 6881), ("::1", 7), ("1.2.3.4", 6881)])
    assert record == {
        "id": identity.node_id,
        "name": "ann",
        "addresses": ["1.2.3.4:6881", "[::1]:7"],
    }


def test_name_setting_from_file_and_flag(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('name = "  Ann "\n')
    assert load_config(overrides={"data_dir": str(tmp_path)}).name == "Ann"
    assert load_config(overrides={"data_dir": str(tmp_path), "name": "Bob"}).name == "Bob"
    assert load_config(overrides={"data_dir": str(tmp_path / "none")}).name is None
    for bad in ("", "   ", "x" * 65, "tab\there", 5):
        with pytest.raises(ConfigError, match="name"):
            load_config(overrides={"data_dir": str(tmp_path), "name": bad})
