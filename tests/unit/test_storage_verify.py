"""PieceVerifier: which hashes are checked for v1, v2 and hybrid torrents."""

from __future__ import annotations

import dataclasses
import os

from servent.codec.metainfo import Metainfo
from servent.codec.piece_layout import PieceLayout
from servent.storage.verify import PieceVerifier
from storage_torrents import make_metainfo, piece_bytes

PIECE = 16384


def verifier(meta: Metainfo, *, both: bool) -> PieceVerifier:
    layout = PieceLayout(meta.files, meta.piece_length)
    return PieceVerifier(layout, meta.files, meta.piece_hashes, meta.piece_layers, verify_both=both)


def with_wrong_v2_root(meta: Metainfo) -> Metainfo:
    """The hybrid torrent with its first file's v2 root replaced (v1 hashes intact)."""
    first = meta.files[0]
    files = (dataclasses.replace(first, pieces_root=b"\x42" * 32), *meta.files[1:])
    return dataclasses.replace(meta, files=files)


def test_hybrid_checks_sha1_by_default_and_both_on_request() -> None:
    files = [("a", os.urandom(PIECE // 2)), ("b", os.urandom(3 * PIECE))]
    meta = make_metainfo(files, PIECE, "hybrid")
    broken = with_wrong_v2_root(meta)
    piece0 = piece_bytes(meta, files, 0)
    assert verifier(meta, both=True).verify(0, piece0)
    assert verifier(broken, both=False).verify(0, piece0), "SHA-1 alone accepts the piece"
    assert not verifier(broken, both=True).verify(0, piece0), "the v2 root is checked too"


def test_v2_multi_piece_file_checks_its_piece_layer_entry() -> None:
    files = [("big", os.urandom(2 * PIECE + 100))]
    meta = make_metainfo(files, PIECE, "v2")
    check = verifier(meta, both=False)
    pieces = [piece_bytes(meta, files, i) for i in range(meta.num_pieces)]
    assert [check.verify(i, p) for i, p in enumerate(pieces)] == [True, True, True]
    assert not check.verify(0, pieces[1]), "a piece at the wrong index fails"
    assert not check.verify(2, pieces[2] + b"\0"), "the short last piece must not be padded"


def test_v1_rejects_wrong_length_and_wrong_bytes() -> None:
    files = [("x", os.urandom(PIECE + 1))]
    meta = make_metainfo(files, PIECE, "v1")
    check = verifier(meta, both=False)
    assert check.verify(1, piece_bytes(meta, files, 1))
    assert not check.verify(1, b"\0")
    assert not check.verify(0, bytes(PIECE))
