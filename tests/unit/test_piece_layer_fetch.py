"""Collecting v2 piece layers with hash requests: runs, verification, liars, rejects."""

from __future__ import annotations

from pathlib import Path

from interop.reference_clients import write_payload
from servent.codec.metainfo import Metainfo
from servent.codec.metainfo.build import TorrentVersion
from servent.codec.metainfo.parse import parse_info
from servent.proto.hash_serving import HashServer
from servent.proto.peerwire import Hashes, HashReject, HashRequest
from servent.proto.piece_layer_fetch import MAX_RUN, PieceLayerCollector
from servent.storage.torrent_creator import create_torrent

PIECE = 16 * 1024


def v2_torrent(root: Path, sizes: dict[str, int]) -> Metainfo:
    for number, (name, size) in enumerate(sizes.items()):
        write_payload(root / "t" / name, size, seed=number)
    return create_torrent(root / "t", version=TorrentVersion.V2, piece_length=PIECE)


def answer(server: HashServer, request: HashRequest, *, lie: bool = False) -> Hashes:
    hashes = server.answer(request)
    assert hashes is not None
    if lie:
        hashes = bytes(len(hashes))
    return Hashes(
        request.pieces_root, request.base_layer, request.index, request.length,
        request.proof_layers, hashes,
    )  # fmt: skip


def test_layers_of_long_files_are_requested_in_runs_and_verified(tmp_path: Path) -> None:
    # 700 pieces: two runs of 512; one-piece and empty files need nothing.
    meta = v2_torrent(tmp_path, {"long.bin": PIECE * 700 - 5, "short.bin": 100, "mid.bin": 40_000})
    magnet_meta = parse_info(meta.info_bytes)  # what a magnet gives: no layers
    collector = PieceLayerCollector(magnet_meta)
    server = HashServer(meta.piece_layers, meta.piece_length)
    assert not collector.done
    requests = collector.next_requests("peer", 0.0)
    assert {r.length for r in requests} == {MAX_RUN, 4}
    assert collector.next_requests("other", 1.0) == []  # all in flight
    for request in requests:
        collector.receive("peer", answer(server, request))
    assert collector.done and collector.layers == dict(meta.piece_layers)
    assert parse_info(meta.info_bytes, collector.layers).piece_layers == meta.piece_layers


def test_a_layer_that_fails_its_root_marks_its_sender_bad_and_is_asked_again(
    tmp_path: Path,
) -> None:
    meta = v2_torrent(tmp_path, {"a.bin": PIECE * 5})
    collector = PieceLayerCollector(parse_info(meta.info_bytes))
    server = HashServer(meta.piece_layers, meta.piece_length)
    (request,) = collector.next_requests("liar", 0.0)
    collector.receive("liar", answer(server, request, lie=True))
    assert "liar" in collector.bad_peers and not collector.done
    assert collector.next_requests("liar", 1.0) == []
    (again,) = collector.next_requests("honest", 1.0)
    assert again == request
    collector.receive("honest", answer(server, again))
    assert collector.done


def test_rejects_and_timeouts_move_the_request_to_another_peer(tmp_path: Path) -> None:
    meta = v2_torrent(tmp_path, {"a.bin": PIECE * 3})
    collector = PieceLayerCollector(parse_info(meta.info_bytes))
    (request,) = collector.next_requests("a", 0.0)
    collector.receive("a", HashReject(*_fields(request)))
    assert collector.next_requests("a", 1.0) == []  # a said no
    assert collector.next_requests("b", 1.0) == [request]
    assert collector.next_requests("c", 2.0) == []  # b has it in flight
    assert collector.next_requests("c", 100.0) == [request]  # b timed out


def test_unsolicited_or_short_answers_are_ignored(tmp_path: Path) -> None:
    meta = v2_torrent(tmp_path, {"a.bin": PIECE * 3})
    collector = PieceLayerCollector(parse_info(meta.info_bytes))
    server = HashServer(meta.piece_layers, meta.piece_length)
    (request,) = collector.next_requests("a", 0.0)
    collector.receive("b", answer(server, request))  # not asked of b
    good = answer(server, request)
    collector.receive("a", Hashes(*_fields(request), good.hashes[:32]))
    assert not collector.done and not collector.bad_peers


def _fields(request: HashRequest) -> tuple[bytes, int, int, int, int]:
    return (
        request.pieces_root, request.base_layer, request.index, request.length,
        request.proof_layers,
    )  # fmt: skip
