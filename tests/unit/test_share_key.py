"""Share keys: printed forms round-trip; a typo, a wrong kind or a wrong password is refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servent.codec.share_key import (
    KeyKind,
    ShareKeyError,
    WrongPasswordError,
    format_share_key,
    lock_share_key,
    parse_share_key,
    public_key_of,
    read_secret_of,
    share_id,
)

SIZES = {KeyKind.READ_WRITE: 32, KeyKind.READ_ONLY: 64, KeyKind.ENCRYPTED: 32}


@st.composite
def kinds_and_keys(draw: st.DrawFn) -> tuple[KeyKind, bytes]:
    kind = draw(st.sampled_from(list(KeyKind)))
    return kind, draw(st.binary(min_size=SIZES[kind], max_size=SIZES[kind]))


@given(kind_and_key=kinds_and_keys())
def test_keys_round_trip(kind_and_key: tuple[KeyKind, bytes]) -> None:
    kind, key = kind_and_key
    text = format_share_key(kind, key)
    assert text.startswith(kind.value)
    assert len(text) == 4 + -(-(len(key) + 2) * 8 // 5)
    parsed = parse_share_key("  " + text.upper() + "\n")
    assert (parsed.kind, parsed.key) == (kind, key)


@given(key=st.binary(min_size=64, max_size=64), position=st.integers(min_value=4, max_value=109))
def test_a_changed_character_is_refused(key: bytes, position: int) -> None:
    text = format_share_key(KeyKind.READ_ONLY, key)
    swapped = "a" if text[position] != "a" else "b"
    with pytest.raises(ShareKeyError):
        parse_share_key(text[:position] + swapped + text[position + 1 :])


def test_kinds_are_not_interchangeable() -> None:
    key = bytes(range(32))
    encrypted = format_share_key(KeyKind.ENCRYPTED, key)
    with pytest.raises(ShareKeyError, match="checksum"):
        parse_share_key("srw-" + encrypted[4:])
    for bad in ("", "xyz-" + encrypted[4:], encrypted[:-1], encrypted + "a", "sen-" + "1" * 55):
        with pytest.raises(ShareKeyError):
            parse_share_key(bad)
    with pytest.raises(ShareKeyError):
        format_share_key(KeyKind.READ_ONLY, key)  # a read-only key is 64 bytes


def test_each_key_gives_what_its_holder_may_have() -> None:
    seed = bytes(range(32))
    public, secret = public_key_of(seed), read_secret_of(seed)
    read_write = parse_share_key(format_share_key(KeyKind.READ_WRITE, seed))
    read_only = parse_share_key(format_share_key(KeyKind.READ_ONLY, public + secret))
    encrypted = parse_share_key(format_share_key(KeyKind.ENCRYPTED, public))
    assert read_write.public_key == read_only.public_key == encrypted.public_key == public
    assert read_write.read_secret == read_only.read_secret == secret
    assert secret not in (seed, public)
    assert encrypted.read_secret is None
    assert len(share_id(public)) == 16


@settings(max_examples=1, deadline=None)  # Argon2id costs 64 MiB and a fraction of a second
@given(kind_and_key=kinds_and_keys())
def test_a_locked_key_opens_with_its_password_only(kind_and_key: tuple[KeyKind, bytes]) -> None:
    kind, key = kind_and_key
    plain = format_share_key(kind, key)
    locked = lock_share_key(plain, b"correct horse")
    assert locked.startswith("p" + kind.value[1:])
    assert locked != lock_share_key(plain, b"correct horse")  # a new salt each time
    assert parse_share_key(locked, b"correct horse") == parse_share_key(plain)
    with pytest.raises(WrongPasswordError, match="wrong password"):
        parse_share_key(locked, b"correct horsf")
    with pytest.raises(ShareKeyError, match="locked with a password"):
        parse_share_key(locked)
    with pytest.raises(ShareKeyError, match="checksum"):
        parse_share_key(locked[:10] + ("a" if locked[10] != "a" else "b") + locked[11:], b"x")
    with pytest.raises(ShareKeyError, match="password is 1 to"):
        lock_share_key(plain, b"")
