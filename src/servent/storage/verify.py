"""Piece verification: SHA-1 (v1, hybrid) and SHA-256 merkle (v2 piece layers).

:class:`PieceVerifier` turns a torrent's hashes into one question, "is this
the data of piece ``i``?", answered by CPU work only.  Storage calls it from
worker threads: ``hashlib`` releases the GIL on large buffers, so pieces hash in
parallel on every core.

v2 rules (BEP 52): a piece belongs to exactly one file.  For a file longer than
one piece the expected hash is that file's entry in ``piece layers``, computed
over the piece's 16 KiB blocks padded with zero leaves to a full piece.  A file
no longer than one piece has no piece-layer entry; its only piece must hash to
the file's ``pieces root`` (tree padded to the file's own block count).  In a
hybrid torrent a piece is the file's bytes followed by BEP 47 pad zeros; the v2
hash covers the file's bytes only.  Hybrid torrents use SHA-1 by default and
both hashes with ``verify_both=True``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Protocol

from servent.codec import merkle
from servent.codec.piece_layout import PieceLayout
from servent.errors import StorageError

V2_HASH_SIZE = 32


class VerifiableFile(Protocol):
    @property
    def length(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def pad(self) -> bool: ...

    @property
    def pieces_root(self) -> bytes | None: ...


class PieceVerifier:
    """Checks piece data against v1 and/or v2 hashes; thread-safe (immutable)."""

    def __init__(
        self,
        layout: PieceLayout,
        files: Sequence[VerifiableFile],
        piece_hashes: Sequence[bytes],
        piece_layers: Mapping[bytes, bytes],
        *,
        verify_both: bool = False,
    ) -> None:
        self.layout = layout
        self._files = files
        self._sha1 = piece_hashes
        self._layers = dict(piece_layers)
        has_v1 = len(piece_hashes) > 0
        has_v2 = any(f.pieces_root is not None for f in files if not f.pad and f.length)
        if has_v1 and len(piece_hashes) != layout.num_pieces:
            raise StorageError(f"{len(piece_hashes)} piece hashes for {layout.num_pieces} pieces")
        if not has_v1 and not has_v2:
            raise StorageError("the torrent has neither v1 nor v2 hashes")
        self.use_v1 = has_v1
        self.use_v2 = has_v2 and (verify_both or not has_v1)

    def add_piece_layer(self, pieces_root: bytes, layer: bytes) -> bool:
        """Keep ``layer`` if it is the piece layer of a file whose root is ``pieces_root``."""
        piece_length = self.layout.piece_length
        for f in self._files:
            if f.pad or f.pieces_root != pieces_root or f.length <= piece_length:
                continue
            pieces = -(-f.length // piece_length)
            if len(layer) != pieces * V2_HASH_SIZE:
                return False
            hashes = [layer[i : i + V2_HASH_SIZE] for i in range(0, len(layer), V2_HASH_SIZE)]
            if merkle.root_from_piece_layer(hashes, piece_length) != pieces_root:
                return False
            self._layers[pieces_root] = bytes(layer)
            return True
        return False

    def verify(self, index: int, data: bytes | bytearray | memoryview) -> bool:
        """True if ``data`` is exactly piece ``index``."""
        if len(data) != self.layout.piece_size(index):
            return False
        if self.use_v1 and hashlib.sha1(data).digest() != self._sha1[index]:
            return False
        return not self.use_v2 or self._verify_v2(index, memoryview(data))

    def _verify_v2(self, index: int, data: memoryview) -> bool:
        piece_length = self.layout.piece_length
        real = [s for s in self.layout.spans(index) if not s.pad]
        if len(real) != 1:
            return False  # a v2 piece always holds bytes of exactly one file
        span = real[0]
        entry = self._files[span.file_index]
        root = entry.pieces_root
        if root is None:
            return False
        start = index * piece_length
        offset_in_piece = entry.offset + span.file_offset - start
        own = data[offset_in_piece : offset_in_piece + span.length]
        if entry.length <= piece_length:
            return merkle.file_root(own) == root
        layer = self._layers.get(root)
        if layer is None:
            raise StorageError(f"piece layer of file {span.file_index} is not known yet")
        k = span.file_offset // piece_length
        expected = layer[k * V2_HASH_SIZE : (k + 1) * V2_HASH_SIZE]
        return merkle.piece_hash_v2(own, piece_length) == expected
