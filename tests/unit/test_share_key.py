"""Share keys: printed forms round-trip, and a typo or wrong kind is a clear error."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servent.codec.share_key import (
    KeyKind,
    ShareKeyError,
    format_share_key,
    parse_share_key,
    public_key_of,
    share_id,
)

keys = st.binary(min_size=32, max_size=32)


@given(key=keys, kind=st.sampled_from(list(KeyKind)))
def test_keys_round_trip(key: bytes, kind: KeyKind) -> None:
    text = format_share_key(kind, key)
    assert text.startswith(kind.value) and len(text) == 59
    parsed = parse_share_key("  " + text.upper() + "\n")
    assert (parsed.kind, parsed.key) == (kind, key)


@given(key=keys, position=st.integers(min_value=4, max_value=58))
def test_a_changed_character_is_refused(key: bytes, position: int) -> None:
    text = format_share_key(KeyKind.READ_ONLY, key)
    swapped = "a" if text[position] != "a" else "b"
    with pytest.raises(ShareKeyError):
        parse_share_key(text[:position] + swapped + text[position + 1 :])


def test_kinds_are_not_interchangeable() -> None:
    key = bytes(range(32))
    read_only = format_share_key(KeyKind.READ_ONLY, key)
    with pytest.raises(ShareKeyError, match="checksum"):
        parse_share_key("srw-" + read_only[4:])
    for bad in ("", "xyz-" + read_only[4:], read_only[:-1], read_only + "a", "sro-" + "1" * 55):
        with pytest.raises(ShareKeyError):
            parse_share_key(bad)
    with pytest.raises(ShareKeyError):
        format_share_key(KeyKind.READ_ONLY, b"short")


def test_a_read_write_key_gives_the_public_key_and_id() -> None:
    seed = bytes(range(32))
    parsed = parse_share_key(format_share_key(KeyKind.READ_WRITE, seed))
    assert parsed.public_key == public_key_of(seed) != seed
    assert share_id(parsed.public_key) == share_id(public_key_of(seed))
    assert len(share_id(parsed.public_key)) == 16
