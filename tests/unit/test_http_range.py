"""The Range header parser used by the stream route."""

from __future__ import annotations

import pytest

from servent.codec.http_range import ByteRange, UnsatisfiableRange, parse_range


def test_open_ended_closed_and_suffix_ranges() -> None:
    assert parse_range("bytes=0-", 100) == ByteRange(0, 99, 100)
    assert parse_range("bytes=10-19", 100) == ByteRange(10, 19, 100)
    assert parse_range("bytes=90-500", 100) == ByteRange(90, 99, 100)
    assert parse_range("bytes=-30", 100) == ByteRange(70, 99, 100)
    assert parse_range("bytes=-300", 100) == ByteRange(0, 99, 100)
    assert ByteRange(10, 19, 100).content_range() == "bytes 10-19/100"
    assert ByteRange(10, 19, 100).length == 10


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "items=0-1",
        "bytes=0-1,5-6",
        "bytes=a-",
        "bytes=5-2",
        "bytes=",
        "bytes=-",
        "x" * 300,
    ],
)
def test_headers_not_understood_mean_the_whole_file(header: str | None) -> None:
    assert parse_range(header, 100) is None


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=500-600", "bytes=-0"])
def test_ranges_outside_the_file_are_unsatisfiable(header: str) -> None:
    with pytest.raises(UnsatisfiableRange):
        parse_range(header, 100)
