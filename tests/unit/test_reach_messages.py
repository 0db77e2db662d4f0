"""``servent/reach/1`` messages: round trips and refused input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servent.proto.reach import (
    ReachAnswer,
    ReachMessageError,
    decode_answer,
    decode_request,
    encode_answer,
    encode_request,
)


def test_round_trips() -> None:
    assert decode_request(encode_request(6881)) == 6881
    answer = ReachAnswer(True, ("11.77.0.1", 40000))
    assert decode_answer(encode_answer(answer)) == answer
    v6 = ReachAnswer(False, ("2001:db8::5", 1))
    assert decode_answer(encode_answer(v6)) == v6


@pytest.mark.parametrize(
    "data",
    [b"", b"le", b"d4:porti0ee", b"d4:porti65536ee", b"d4:port1:xe", b"d4:porti1e" + b"x" * 64],
)
def test_bad_requests_are_refused(data: bytes) -> None:
    with pytest.raises(ReachMessageError):
        decode_request(data)


def test_bad_answers_are_refused() -> None:
    for data in (b"d2:oki2e4:seen6:abcdefe", b"d2:oki1e4:seen3:abce", b"d2:oki1ee", b"x" * 200):
        with pytest.raises(ReachMessageError):
            decode_answer(data)
    with pytest.raises(ValueError, match="outside"):
        encode_request(0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_raises_only_reach_message_error(data: bytes) -> None:
    with contextlib.suppress(ReachMessageError):
        assert 1 <= decode_request(data) <= 65535
    with contextlib.suppress(ReachMessageError):
        assert 0 <= decode_answer(data).seen[1] <= 65535
