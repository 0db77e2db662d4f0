"""Collecting piece layers from hostile peers: any answer at all is taken or ignored,
never a crash, and only a layer that hashes to the file's root is ever kept."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.codec.merkle import root_from_piece_layer
from servent.codec.metainfo.model import FileEntry, Metainfo
from servent.proto.hash_serving import HashServer
from servent.proto.peerwire import Hashes, HashReject
from servent.proto.piece_layer_fetch import PieceLayerCollector

PIECE = 32 * 1024


def torrent(pieces: int) -> tuple[Metainfo, bytes, bytes]:
    hashes = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(pieces)]
    root = root_from_piece_layer(hashes, PIECE)
    length = PIECE * pieces - 1
    meta = Metainfo(
        name="f", piece_length=PIECE, total_length=length, num_pieces=pieces, info_bytes=b"",
        files=(FileEntry(("f",), length, 0, pieces_root=root),), info_hash_v2=bytes(32),
    )  # fmt: skip
    return meta, root, b"".join(hashes)


answers = st.tuples(
    st.sampled_from(["a", "b"]),
    st.booleans(),  # reject instead of hashes
    st.integers(0, 3),  # which requested run (or a made-up one)
    st.binary(max_size=40 * 32),
    st.booleans(),  # use the real hashes for that run
)


@settings(max_examples=150, deadline=None)
@given(st.integers(2, 700), st.lists(answers, max_size=12))
def test_hostile_answers_never_crash_and_never_keep_a_wrong_layer(
    pieces: int, script: list[tuple[str, bool, int, bytes, bool]]
) -> None:
    meta, root, layer = torrent(pieces)
    server = HashServer({root: layer}, PIECE)
    collector = PieceLayerCollector(meta)
    now = 0.0
    for peer, reject, which, junk, honest in script:
        requests = collector.next_requests(peer, now)
        now += 1.0
        if not requests:
            continue
        request = requests[which % len(requests)]
        fields = (
            request.pieces_root, request.base_layer, request.index, request.length,
            request.proof_layers,
        )  # fmt: skip
        if reject:
            collector.receive(peer, HashReject(*fields))
            continue
        real = server.answer(request)
        collector.receive(peer, Hashes(*fields, real if honest and real else junk))
    for kept_root, kept in collector.layers.items():
        assert kept_root == root and kept == layer
    assert collector.done == (root in collector.layers)
