"""Cutting the received byte stream into length-prefixed frames, with few copies.

Why a class of its own: this is the per-byte hot path of a download.  At
hundreds of MiB/s every copy of the payload costs a visible share of a core,
so :class:`FrameReader` can *borrow* the driver's read buffer instead of
copying it: frames that lie wholly inside the buffer are handed out as
positions in it, and only the tail of a frame cut by the end of a read (at
most one frame per read) is copied into the reader's own ``bytearray``.

The contract in borrow mode: the driver must not change the buffer it fed
until :meth:`FrameReader.next_frame` has returned ``None`` (the reader then
copies what it still needs) or it feeds again.  Without borrow mode every fed
byte is copied at once, so any buffer may be reused immediately.

The number of unparsed bytes held (own buffer plus borrowed input) is
bounded by ``max_buffer``; a frame's length is checked against the limit the
caller passes before any of its body is waited for.
"""

from __future__ import annotations

import struct
from typing import TypeAlias

from servent.errors import MessageTooLargeError

__all__ = ["Frame", "FrameReader"]

_U32 = struct.Struct(">I")

#: ``(buffer, start, end)``: a frame's body (id byte and payload) is
#: ``buffer[start:end]``; ``start == end`` is a keep-alive.  Valid until the next
#: call into the reader.
Frame: TypeAlias = tuple[bytearray | memoryview, int, int]


class FrameReader:
    """A bounded receive buffer that yields one frame at a time."""

    __slots__ = ("_buf", "_pos", "_view", "_vpos", "borrow", "max_buffer")

    def __init__(self, max_buffer: int, *, borrow: bool = False) -> None:
        self.max_buffer = max_buffer
        #: Keep a view of fed data instead of copying it (see the module docstring).
        self.borrow = borrow
        self._buf = bytearray()  # carried-over bytes (a frame cut by a read's end)
        self._pos = 0
        self._view: memoryview | None = None  # borrowed input, parsed from ``_vpos``
        self._vpos = 0

    def buffered(self) -> int:
        """Bytes received and not yet handed out as frames."""
        pending = 0 if self._view is None else len(self._view) - self._vpos
        return len(self._buf) - self._pos + pending

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        """Take received bytes; raises :class:`MessageTooLargeError` above the bound."""
        if self.buffered() + len(data) > self.max_buffer:
            raise MessageTooLargeError("receive buffer overflow")
        self._stash()
        if self.borrow:
            view = memoryview(data)
            self._view = view if view.format == "B" else view.cast("B")
            self._vpos = 0
        else:
            self._drop_consumed()
            self._buf += data

    def release(self) -> None:
        """Copy what is still borrowed, so the driver may reuse its buffer now."""
        self._stash()

    def clear(self) -> None:
        self._buf.clear()
        self._pos = 0
        self._view = None
        self._vpos = 0

    # ---------------------------------------------------------------- raw access

    def peek(self, size: int) -> bytes:
        """Up to ``size`` unparsed bytes, copied (for the handshake, before framing)."""
        self._stash()
        return bytes(self._buf[self._pos : self._pos + size])

    def skip(self, size: int) -> None:
        """Consume ``size`` bytes returned by :meth:`peek`."""
        self._pos += size

    # ---------------------------------------------------------------- borrowed runs

    def borrowed_tail(self) -> tuple[memoryview, int] | None:
        """The unparsed borrowed input as ``(view, position)``, if no carried bytes precede it.

        For a caller that parses a run of frames itself (the leecher's blocks):
        it reads whole frames from ``view`` starting at ``position`` and then
        calls :meth:`advance` past the last one it took.  The frame length
        bound is the caller's to check.
        """
        if self._view is None or self._pos < len(self._buf):
            return None
        return self._view, self._vpos

    def advance(self, position: int) -> None:
        """The frames of the borrowed input before ``position`` were parsed by the caller."""
        self._vpos = position

    # ---------------------------------------------------------------- a driver's own parse

    def complete_carried(
        self, data: memoryview, max_length: int
    ) -> tuple[bytearray, int, int] | None:
        """Complete the carried frame, if any, with the bytes of ``data`` it lacks.

        For a driver that parses its reads itself (the leecher's lane):
        returns ``(buffer, start, taken)``: the frame is ``buffer[start:]``
        and ``taken`` bytes of ``data`` went into it (0: nothing was
        carried).  ``None``, and nothing changes, when borrowed input is
        still unparsed or the carried frame cannot be completed here (its
        length unknown, above ``max_length``, or longer than ``data`` can
        complete): the regular path then takes the read.
        """
        buf = self._buf
        pos = self._pos
        if self._view is not None:
            return None
        if pos == len(buf):
            return buf, pos, 0
        if len(buf) - pos < 4:
            return None
        (length,) = _U32.unpack_from(buf, pos)
        need = pos + 4 + length - len(buf)
        if length > max_length or need > len(data):
            return None
        buf += data[:need]
        return buf, pos, need

    def drop_carried(self) -> None:
        """The completed carried frame was parsed by the caller."""
        self._buf.clear()
        self._pos = 0

    def keep_cut(self, data: memoryview, pos: int, max_length: int) -> int:
        """Keep ``data[pos:]`` if it is one frame of a legal length cut by the read's end.

        Returns the position after what is kept (``len(data)``), or ``pos``
        when there is nothing to keep or it is not such a frame.
        """
        rest = len(data) - pos
        if not rest or rest > self.max_buffer:
            return pos
        if rest >= 4:
            (length,) = _U32.unpack_from(data, pos)
            if length > max_length or 4 + length <= rest:
                return pos
        self._drop_consumed()
        self._buf += data[pos:]
        return len(data)

    # ---------------------------------------------------------------- frames

    def next_frame(self, max_length: int) -> Frame | None:
        """The next whole frame, or ``None`` when more bytes are needed.

        Raises :class:`MessageTooLargeError` for a frame longer than ``max_length``.
        """
        buf = self._buf
        if self._pos < len(buf):
            return self._carried_frame(max_length)
        view = self._view
        if view is None:
            self._drop_consumed()
            return None
        start = self._vpos
        size = len(view)
        if size - start >= 4:
            (length,) = _U32.unpack_from(view, start)
            if length > max_length:
                raise MessageTooLargeError(f"message of {length} bytes")
            end = start + 4 + length
            if end <= size:
                self._vpos = end
                return view, start + 4, end
        self._stash()
        return None

    def _carried_frame(self, max_length: int) -> Frame | None:
        """Complete the frame begun in ``_buf`` with just the bytes it lacks."""
        buf = self._buf
        pos = self._pos
        if len(buf) - pos < 4:
            self._take(4 - (len(buf) - pos))
            if len(buf) - pos < 4:
                self._stash()
                self._drop_consumed()
                return None
        (length,) = _U32.unpack_from(buf, pos)
        if length > max_length:
            raise MessageTooLargeError(f"message of {length} bytes")
        end = pos + 4 + length
        if end > len(buf):
            self._take(end - len(buf))
            if end > len(buf):
                self._stash()
                self._drop_consumed()
                return None
        self._pos = end
        return buf, pos + 4, end

    def _take(self, count: int) -> None:
        """Move up to ``count`` bytes of borrowed input into the own buffer."""
        view = self._view
        if view is None:
            return
        start = self._vpos
        stop = min(len(view), start + count)
        self._buf += view[start:stop]
        self._vpos = stop
        if stop == len(view):
            self._view = None
            self._vpos = 0

    def _stash(self) -> None:
        """Copy the rest of the borrowed input into the own buffer and let it go."""
        view = self._view
        if view is None:
            return
        self._drop_consumed()
        if self._vpos < len(view):
            self._buf += view[self._vpos :]
        self._view = None
        self._vpos = 0

    def _drop_consumed(self) -> None:
        if self._pos:
            if self._pos >= len(self._buf):
                self._buf.clear()
            else:
                del self._buf[: self._pos]
            self._pos = 0
