"""The ``Range`` request header (RFC 9110 §14) for one byte range, as players send it.

Players (mpv, VLC, ffmpeg, browsers) ask for one range at a time:
``bytes=START-``, ``bytes=START-END`` or ``bytes=-SUFFIX``.  A header this
parser does not understand (other units, several ranges, garbage) is ignored
and the whole file is served, as the RFC allows; a range that starts past the
end is unsatisfiable (416).
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_HEADER = 200


class UnsatisfiableRange(ValueError):
    """The range lies outside the file (answer 416 with ``bytes */SIZE``)."""


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Inclusive ``first``..``last`` byte positions of a file of ``size`` bytes."""

    first: int
    last: int
    size: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1

    def content_range(self) -> str:
        return f"bytes {self.first}-{self.last}/{self.size}"


def _digits(text: str) -> int | None:
    text = text.strip()
    if not text or not text.isdigit() or not text.isascii() or len(text) > 20:
        return None
    return int(text)


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range asked for, ``None`` to serve the whole file; raises :class:`UnsatisfiableRange`."""
    if header is None or len(header) > MAX_HEADER:
        return None
    unit, sep, spec = header.partition("=")
    if not sep or unit.strip().lower() != "bytes" or "," in spec:
        return None
    start_text, dash, end_text = spec.partition("-")
    if not dash:
        return None
    start, end = _digits(start_text), _digits(end_text)
    if start_text.strip() == "":
        if end is None:
            return None
        if end == 0 or size == 0:
            raise UnsatisfiableRange(header)
        return ByteRange(max(size - end, 0), size - 1, size)
    if start is None or (end_text.strip() and end is None):
        return None
    if end is not None and end < start:
        return None
    if start >= size:
        raise UnsatisfiableRange(header)
    last = size - 1 if end is None else min(end, size - 1)
    return ByteRange(start, last, size)
