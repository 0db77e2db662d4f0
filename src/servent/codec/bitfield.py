"""A set of piece indices stored as the BEP 3 bitfield: bit 7 of byte 0 is piece 0.

One representation serves storage (which pieces we have or want), the picker and
the peer wire, so no conversion happens on the hot path: ``to_bytes()`` is the
wire form and ``from_bytes()`` validates a peer's bitfield (exact length, spare
bits zero).  Counting uses ``int.bit_count`` over the whole buffer and iteration
skips zero bytes with a per-byte table, so both stay fast for 100k+ pieces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from servent.errors import BitfieldError

# For each byte value, the bit positions (0 = most significant) that are set.
_SET_BITS: tuple[tuple[int, ...], ...] = tuple(
    tuple(bit for bit in range(8) if value & (0x80 >> bit)) for value in range(256)
)


def _byte_length(num_pieces: int) -> int:
    return (num_pieces + 7) // 8


class Bitfield:
    """A mutable fixed-size set of piece indices ``0 <= i < num_pieces``."""

    __slots__ = ("_bits", "_count", "_size")

    def __init__(self, num_pieces: int, *, all_set: bool = False) -> None:
        if num_pieces < 0:
            raise ValueError("num_pieces must be >= 0")
        self._size = num_pieces
        self._bits = bytearray(_byte_length(num_pieces))
        self._count = 0
        if all_set and num_pieces:
            self._bits[:] = b"\xff" * len(self._bits)
            self._clear_spare_bits()
            self._count = num_pieces

    # -- construction -----------------------------------------------------

    @classmethod
    def from_bytes(cls, data: bytes, num_pieces: int) -> Bitfield:
        """Validate a wire bitfield: exact length and zero spare bits (BEP 3)."""
        expected = _byte_length(num_pieces)
        if len(data) != expected:
            raise BitfieldError(f"bitfield of {len(data)} bytes, expected {expected}")
        spare = expected * 8 - num_pieces
        if spare and data[-1] & ((1 << spare) - 1):
            raise BitfieldError("bitfield has spare bits set")
        field = cls(num_pieces)
        field._bits[:] = data
        field._count = int.from_bytes(data, "big").bit_count()
        return field

    @classmethod
    def from_indices(cls, num_pieces: int, indices: Iterable[int]) -> Bitfield:
        field = cls(num_pieces)
        for index in indices:
            field.set(index)
        return field

    def copy(self) -> Bitfield:
        other = Bitfield(self._size)
        other._bits[:] = self._bits
        other._count = self._count
        return other

    # -- queries ----------------------------------------------------------

    def __len__(self) -> int:
        """The number of pieces the field can hold (not the number set)."""
        return self._size

    @property
    def num_pieces(self) -> int:
        return self._size

    def count(self) -> int:
        """How many pieces are set (kept up to date, O(1))."""
        return self._count

    def __getitem__(self, index: int) -> bool:
        self._check(index)
        return bool(self._bits[index >> 3] & (0x80 >> (index & 7)))

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int) or not 0 <= index < self._size:
            return False
        return bool(self._bits[index >> 3] & (0x80 >> (index & 7)))

    def all(self) -> bool:
        return self._count == self._size

    def any(self) -> bool:
        return self._count > 0

    def __iter__(self) -> Iterator[int]:
        """The set indices in increasing order."""
        table = _SET_BITS
        for byte_index, byte in enumerate(self._bits):
            if byte:
                base = byte_index << 3
                for bit in table[byte]:
                    yield base + bit

    def missing(self) -> Iterator[int]:
        """The indices that are not set, in increasing order."""
        table = _SET_BITS
        size = self._size
        for byte_index, byte in enumerate(self._bits):
            inverse = byte ^ 0xFF
            if inverse:
                base = byte_index << 3
                for bit in table[inverse]:
                    if base + bit < size:
                        yield base + bit

    def to_bytes(self) -> bytes:
        """The BEP 3 wire form."""
        return bytes(self._bits)

    # -- updates ----------------------------------------------------------

    def set(self, index: int) -> bool:
        """Set ``index``; return True if it was not set before."""
        self._check(index)
        mask = 0x80 >> (index & 7)
        byte = self._bits[index >> 3]
        if byte & mask:
            return False
        self._bits[index >> 3] = byte | mask
        self._count += 1
        return True

    def clear(self, index: int) -> bool:
        """Clear ``index``; return True if it was set before."""
        self._check(index)
        mask = 0x80 >> (index & 7)
        byte = self._bits[index >> 3]
        if not byte & mask:
            return False
        self._bits[index >> 3] = byte & ~mask
        self._count -= 1
        return True

    # -- set algebra (same size only) -------------------------------------

    def __and__(self, other: Bitfield) -> Bitfield:
        return self._combine(other, int.__and__)

    def __or__(self, other: Bitfield) -> Bitfield:
        return self._combine(other, int.__or__)

    def __sub__(self, other: Bitfield) -> Bitfield:
        """Indices set here and not in ``other``."""
        return self._combine(other, lambda a, b: a & ~b)

    def issubset(self, other: Bitfield) -> bool:
        return (self - other)._count == 0

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Bitfield):
            return NotImplemented
        return self._size == other._size and self._bits == other._bits

    def __repr__(self) -> str:
        return f"Bitfield({self._count}/{self._size})"

    # -- internals --------------------------------------------------------

    def _combine(self, other: Bitfield, op: Callable[[int, int], int]) -> Bitfield:
        if not isinstance(other, Bitfield) or other._size != self._size:
            raise ValueError("bitfields of different sizes")
        length = len(self._bits)
        a = int.from_bytes(self._bits, "big")
        b = int.from_bytes(other._bits, "big")
        value = op(a, b)
        value &= (1 << (length * 8)) - 1
        result = Bitfield(self._size)
        result._bits[:] = value.to_bytes(length, "big")
        result._count = value.bit_count()
        return result

    def _clear_spare_bits(self) -> None:
        spare = len(self._bits) * 8 - self._size
        if spare:
            self._bits[-1] &= 0xFF ^ ((1 << spare) - 1)

    def _check(self, index: int) -> None:
        if not 0 <= index < self._size:
            raise IndexError(f"piece {index} outside 0..{self._size - 1}")
