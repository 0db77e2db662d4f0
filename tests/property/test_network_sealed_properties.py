"""Hypothesis: the sealed wire's frames round-trip however the bytes are cut, and
hostile bytes into either handshake role or a frame opener raise only
:class:`SealedWireError` (``docs/networks.md`` section 8)."""

from __future__ import annotations

import contextlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from servent.errors import SealedWireError
from servent.proto.network.sealed import (
    MAGIC,
    FrameOpener,
    FrameSealer,
    SealedInitiator,
    SealedResponder,
    WireIdentity,
)

KEY = bytes(range(32))
SWARM_KEY = bytes(20)
_PRIVATE = Ed25519PrivateKey.generate()
ME = WireIdentity(_PRIVATE.public_key().public_bytes_raw(), _PRIVATE.sign)


@given(st.lists(st.binary(max_size=3000), max_size=8), st.lists(st.integers(1, 5000), max_size=8))
@settings(max_examples=150)
def test_frames_round_trip_however_the_bytes_are_cut(writes: list[bytes], cuts: list[int]) -> None:
    sealer, opener = FrameSealer(KEY), FrameOpener(KEY)
    wire = b"".join(sealer.seal(w) for w in writes)
    got, at = [], 0
    for cut in [*cuts, len(wire)]:
        got.append(opener.open(wire[at : at + cut]))
        at += cut
    got.append(opener.open(wire[at:]))
    assert b"".join(got) == b"".join(writes)


@given(st.binary(max_size=400), st.booleans())
@settings(max_examples=300)
def test_hostile_bytes_raise_only_sealed_wire_errors(data: bytes, with_magic: bool) -> None:
    data = MAGIC + data if with_magic else data
    roles = (
        SealedResponder([(bytes(20), SWARM_KEY)], ME, lambda ih, k: True),
        SealedInitiator(bytes(20), SWARM_KEY, ME, lambda k: True),
    )
    for role in roles:
        with contextlib.suppress(SealedWireError):
            role.receive_data(data)
        assert role.result is None  # nothing gets through without the handshake
    with contextlib.suppress(SealedWireError):
        assert FrameOpener(KEY).open(data) == b""
