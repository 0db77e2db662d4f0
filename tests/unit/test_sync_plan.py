"""The sync plan: what a new version does to a folder, and that it never loses a local edit."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from servent.codec.bencode import BValue, decode
from servent.errors import DecodeError
from servent.proto.sync_plan import (
    Action,
    Change,
    VersionError,
    decode_version_value,
    encode_version_value,
    plan_changes,
    supersedes,
)

A, B, C = b"a" * 32, b"b" * 32, b"c" * 32
Listing = dict[tuple[str, ...], bytes]


def test_version_value_round_trips_and_refuses_malformed() -> None:
    ih = bytes(range(20))
    assert decode_version_value(encode_version_value(ih)) == ih
    assert decode_version_value({b"ih": ih, b"x": 1}) == ih
    malformed: list[BValue | None] = [None, b"", [], {b"ih": b"short"}, {b"ih": 5}, {}]
    for bad in malformed:
        with pytest.raises(VersionError):
            decode_version_value(bad)
    with pytest.raises(VersionError):
        encode_version_value(b"x" * 32)


def test_each_case_of_the_table() -> None:
    previous: Listing = {
        ("same",): A,
        ("changed",): A,
        ("gone",): A,
        ("edited",): A,
        ("edited_gone",): A,
    }
    local: Listing = {
        ("same",): A,
        ("changed",): A,
        ("gone",): A,
        ("edited",): C,
        ("edited_gone",): C,
        ("mine",): C,
    }
    new: Listing = {("same",): A, ("changed",): B, ("edited",): B, ("added",): B}
    assert plan_changes(previous, local, new) == [
        Change(Action.ADD, ("added",)),
        Change(Action.REPLACE, ("changed",)),
        Change(Action.CONFLICT, ("edited",)),
        Change(Action.DELETE, ("gone",)),
    ]


def test_first_join_into_a_folder_with_other_content_keeps_it() -> None:
    # Nothing applied yet: a local file at a share path is a local edit.
    assert plan_changes({}, {("x",): A, ("y",): A}, {("x",): B}) == [
        Change(Action.CONFLICT, ("x",))
    ]


listings = st.dictionaries(
    st.tuples(st.sampled_from(["a", "b", "c", "d", "e"])),
    st.sampled_from([A, B, C]),
    max_size=5,
)


@given(previous=listings, local=listings, new=listings)
def test_the_plan_never_loses_a_local_edit(
    previous: dict[tuple[str, ...], bytes],
    local: dict[tuple[str, ...], bytes],
    new: dict[tuple[str, ...], bytes],
) -> None:
    changes = {c.path: c.action for c in plan_changes(previous, local, new)}
    result = dict(local)
    for path, planned in changes.items():
        if planned is Action.DELETE:
            del result[path]
        else:
            result[path] = new[path]
    for path, digest in new.items():
        assert result[path] == digest  # the folder shows the new version
    for path, digest in local.items():
        action = changes.get(path)
        overwritten = action in (Action.REPLACE, Action.DELETE)
        if digest != previous.get(path) and digest != new.get(path):
            # A local edit: only ever overwritten with a conflict copy.
            assert action in (None, Action.CONFLICT)
        if overwritten:
            assert digest == previous[path]  # only the share's own old version moves away
    for path in set(local) - set(new) - set(previous):
        assert path not in changes  # a local addition is left alone


def test_which_version_wins() -> None:
    low, high = b"\x01" * 20, b"\x02" * 20
    assert supersedes(2, low, 1, high)
    assert not supersedes(1, high, 2, low)  # stale or replayed
    assert supersedes(2, high, 2, low) and not supersedes(2, low, 2, high)
    assert not supersedes(2, low, 2, low)  # the version we have
    assert not supersedes(0, low, 0, None)


@given(
    a=st.tuples(st.integers(0, 5), st.binary(min_size=20, max_size=20)),
    b=st.tuples(st.integers(0, 5), st.binary(min_size=20, max_size=20)),
)
def test_two_versions_never_both_win(a: tuple[int, bytes], b: tuple[int, bytes]) -> None:
    assert not (supersedes(*a, *b) and supersedes(*b, *a))
    if a != b:
        assert supersedes(*a, *b) or supersedes(*b, *a)


def test_a_pushed_version_is_taken_only_with_a_valid_signature() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from servent.codec.share_key import SYNC_SALT, public_key_of
    from servent.node.sync_push import push_frame
    from servent.proto.sync_plan import MAX_PUSH_SIZE, decode_push, encode_push

    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    value = encode_version_value(b"i" * 20)
    frame = push_frame(seed, 7, value)
    pushed = decode_push(frame, SYNC_SALT)
    assert (pushed.public_key, pushed.seq, pushed.info_hash) == (public_key_of(seed), 7, b"i" * 20)
    with pytest.raises(VersionError, match="signature"):
        decode_push(frame, b"another salt")
    decoded = decode(frame)
    assert isinstance(decoded, dict)
    signature = decoded[b"sig"]
    assert isinstance(signature, bytes)
    replayed = encode_push(public_key_of(seed), 8, value, signature)  # another seq, same signature
    with pytest.raises(VersionError, match="signature"):
        decode_push(replayed, SYNC_SALT)
    for bad in (b"le", b"d1:ki1ee", b"x" * (MAX_PUSH_SIZE + 1)):
        with pytest.raises(DecodeError):
            decode_push(bad, SYNC_SALT)
