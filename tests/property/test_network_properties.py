"""Network cores under random input: rosters, tokens and frames refuse garbage with one error."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from servent.errors import InvitationError, NetworkError, RosterError
from servent.proto.network import decode_frame, decode_roster, encode_frame, parse_invitation


@given(st.binary(max_size=3000))
def test_frame_decoder_refuses_garbage_or_round_trips(raw: bytes) -> None:
    try:
        frame = decode_frame(raw)
    except NetworkError:
        return
    assert decode_frame(encode_frame(frame)) == frame


@given(st.binary(max_size=3000))
def test_roster_decoder_never_accepts_unsigned_garbage(raw: bytes) -> None:
    try:
        decode_roster(raw)
    except RosterError:
        return
    raise AssertionError("random bytes made a valid signed roster")


@given(st.text(max_size=700))
def test_invitation_parser_raises_only_its_error(text: str) -> None:
    try:
        invite = parse_invitation("snet1" + text)
    except InvitationError:
        return
    assert parse_invitation(invite.text()) == invite
