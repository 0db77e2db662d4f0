"""BEP 44 targets and signatures, with the BEP's test vectors."""

from __future__ import annotations

from servent.codec.bencode import encode
from servent.proto.dht import items

PUBLIC = bytes.fromhex("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548")
SIG_NO_SALT = bytes.fromhex(
    "305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff"
    "1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01"
)
SIG_SALT = bytes.fromhex(
    "6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17d"
    "df9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08"
)
VALUE = encode(b"Hello World!")


def test_signing_buffers_match_the_bep() -> None:
    assert items.signing_buffer(VALUE, 1) == b"3:seqi1e1:v12:Hello World!"
    assert items.signing_buffer(VALUE, 1, b"foobar") == b"4:salt6:foobar3:seqi1e1:v12:Hello World!"


def test_targets_match_the_bep() -> None:
    assert items.mutable_target(PUBLIC).hex() == "4a533d47ec9c7d95b1ad75f576cffc641853b750"
    assert (
        items.mutable_target(PUBLIC, b"foobar").hex() == "411eba73b6f087ca51a3795d9c8c938d365e32c1"
    )
    assert items.immutable_target(VALUE).hex() == "e5f96f6f38320f0f33959cb4d3d656452117aadb"


def test_bep_signatures_verify() -> None:
    assert items.verify(PUBLIC, SIG_NO_SALT, VALUE, 1, b"")
    assert items.verify(PUBLIC, SIG_SALT, VALUE, 1, b"foobar")
    assert not items.verify(PUBLIC, SIG_SALT, VALUE, 1, b"")
    assert not items.verify(PUBLIC, SIG_NO_SALT, VALUE, 2, b"")


def test_sign_then_verify_and_malformed_keys_fail() -> None:
    key = items.private_key_from(bytes(range(32)))
    public = items.public_key_bytes(key)
    signature = items.sign(key, VALUE, 7, b"s")
    assert items.verify(public, signature, VALUE, 7, b"s")
    assert not items.verify(public[:31], signature, VALUE, 7, b"s")
    assert not items.verify(public, signature[:63], VALUE, 7, b"s")
    assert not items.verify(b"\x00" * 32, signature, VALUE, 7, b"s")
