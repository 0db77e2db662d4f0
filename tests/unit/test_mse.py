"""MSE/PE handshake between two in-memory endpoints."""

from __future__ import annotations

import random

import pytest

from servent.errors import MseError
from servent.proto.mse import (
    CRYPTO_PLAINTEXT,
    CRYPTO_RC4,
    KEY_BYTES,
    EncryptionPolicy,
    MseInitiator,
    MseResponder,
    P,
    is_plain_handshake,
)

IH = bytes(range(20))
BT = b"\x13BitTorrent protocol" + b"\x00" * 8 + IH + b"p" * 20


def pump(a: MseInitiator, b: MseResponder, chunk: int = 10_000) -> None:
    for _ in range(2000):
        moved = False
        for src, dst in ((a, b), (b, a)):
            data = src.data_to_send()
            for i in range(0, len(data), chunk):
                if dst.result is None:
                    dst.receive_data(data[i : i + chunk])
            moved = moved or bool(data)
        if not moved:
            return
    raise AssertionError("handshake did not settle")


def test_prime_is_the_768_bit_oakley_group() -> None:
    assert P.bit_length() == 768 and KEY_BYTES * 8 == 768


@pytest.mark.parametrize("chunk", [1, 7, 10_000])
def test_rc4_handshake_carries_the_initial_payload_and_both_directions(chunk: int) -> None:
    a = MseInitiator(IH, rng=random.Random(1), initial_payload=BT)
    b = MseResponder([b"z" * 20, IH], rng=random.Random(2))
    pump(a, b, chunk)
    assert a.result and b.result
    assert a.result.crypto == b.result.crypto == CRYPTO_RC4
    assert b.result.info_hash == IH and b.result.received == BT
    assert a.result.encrypt and b.result.decrypt and b.result.encrypt and a.result.decrypt
    wire = a.result.encrypt(b"hello")
    assert wire != b"hello" and b.result.decrypt(wire) == b"hello"
    assert a.result.decrypt(b.result.encrypt(b"back")) == b"back"


def test_responder_may_choose_plaintext_only_when_rc4_not_offered() -> None:
    # an initiator that offers both gets RC4 (what libtorrent does by default)
    a = MseInitiator(IH, rng=random.Random(3))
    b = MseResponder([IH], rng=random.Random(4))
    pump(a, b)
    assert a.result and a.result.crypto == CRYPTO_RC4


def test_plaintext_only_initiator_gets_plaintext_from_an_enabled_responder() -> None:
    a = MseInitiator(IH, rng=random.Random(5), initial_payload=BT, provide=CRYPTO_PLAINTEXT)
    b = MseResponder([IH], rng=random.Random(6))
    pump(a, b)
    assert a.result and b.result and b.result.crypto == CRYPTO_PLAINTEXT
    assert a.result.encrypt is None and b.result.received == BT


def test_required_responder_refuses_a_plaintext_only_initiator() -> None:
    a = MseInitiator(IH, rng=random.Random(5), provide=CRYPTO_PLAINTEXT)
    b = MseResponder([IH], rng=random.Random(6), policy=EncryptionPolicy.REQUIRED)
    with pytest.raises(MseError, match="no acceptable crypto"):
        pump(a, b)


def test_required_initiator_cannot_offer_plaintext_only() -> None:
    with pytest.raises(MseError, match="forbids"):
        MseInitiator(
            IH, rng=random.Random(0), policy=EncryptionPolicy.REQUIRED, provide=CRYPTO_PLAINTEXT
        )


def test_unknown_torrent_is_refused() -> None:
    a = MseInitiator(IH, rng=random.Random(7))
    b = MseResponder([b"q" * 20], rng=random.Random(8))
    with pytest.raises(MseError, match="do not have"):
        pump(a, b)


def test_garbage_instead_of_a_handshake_is_refused() -> None:
    b = MseResponder([IH], rng=random.Random(9))
    with pytest.raises(MseError):
        b.receive_data(random.Random(0).randbytes(KEY_BYTES + 600))


def test_degenerate_public_key_is_refused() -> None:
    b = MseResponder([IH], rng=random.Random(9))
    with pytest.raises(MseError, match="degenerate"):
        b.receive_data((1).to_bytes(KEY_BYTES, "big"))


def test_off_policy_cannot_start_an_encrypted_handshake() -> None:
    with pytest.raises(MseError):
        MseInitiator(IH, rng=random.Random(0), policy=EncryptionPolicy.OFF)


def test_plain_handshake_detection() -> None:
    assert is_plain_handshake(BT[:5]) and is_plain_handshake(BT)
    assert not is_plain_handshake(b"\x13BitTorrenX") and not is_plain_handshake(b"")


def test_responder_preferring_plaintext_picks_it_when_both_are_offered() -> None:
    # libtorrent's default (prefer_rc4 off): obfuscated handshake, no cipher on the payload
    a = MseInitiator(IH, rng=random.Random(7), initial_payload=BT)
    b = MseResponder([IH], rng=random.Random(8), prefer_plaintext=True)
    pump(a, b)
    assert a.result and b.result and a.result.crypto == b.result.crypto == CRYPTO_PLAINTEXT
    assert b.result.received == BT


def test_required_responder_ignores_a_plaintext_preference() -> None:
    a = MseInitiator(IH, rng=random.Random(9))
    b = MseResponder(
        [IH], rng=random.Random(10), policy=EncryptionPolicy.REQUIRED, prefer_plaintext=True
    )
    pump(a, b)
    assert a.result and a.result.crypto == CRYPTO_RC4
