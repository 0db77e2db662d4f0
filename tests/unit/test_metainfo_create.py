"""Creating torrents from real files: hashes, layout, progress, bounded chunks."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from servent.codec.merkle import BLOCK_SIZE, file_root, piece_hash_v2
from servent.codec.metainfo import Metainfo, parse_torrent
from servent.codec.metainfo.build import TorrentOptions, TorrentVersion, choose_piece_length
from servent.errors import MetainfoError, UnsafePathError
from servent.storage.torrent_creator import create_torrent

PL = 2 * BLOCK_SIZE


def make_payload(root: Path) -> dict[str, bytes]:
    contents = {
        "a.bin": os.urandom(3 * PL + 100),
        "sub/empty": b"",
        "sub/one": b"x",
        "sub/deeper/ünï.txt": os.urandom(PL),
    }
    for rel, data in contents.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return contents


def piece_space(meta: Metainfo, root: Path) -> bytes:
    space = bytearray()
    for entry in meta.files:
        space.extend(b"\x00" * (entry.offset - len(space)))
        if entry.pad:
            space.extend(bytes(entry.length))
        else:
            space.extend((root.parent / Path(*entry.path)).read_bytes())
    return bytes(space)


@pytest.mark.parametrize("version", list(TorrentVersion))
def test_created_hashes_match_the_payload(tmp_path: Path, version: TorrentVersion) -> None:
    root = tmp_path / "payload"
    contents = make_payload(root)
    seen: list[tuple[int, int]] = []
    meta = create_torrent(
        root,
        version=version,
        piece_length=PL,
        chunk_bytes=PL,
        workers=2,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert sorted("/".join(f.path[1:]) for f in meta.payload_files) == sorted(contents)
    assert meta.total_length == sum(map(len, contents.values()))
    assert seen[-1] == (meta.total_length, meta.total_length)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    space = piece_space(meta, root)
    if version.has_v1:
        for index, digest in enumerate(meta.piece_hashes):
            piece = space[index * PL : index * PL + meta.piece_size(index)]
            assert hashlib.sha1(piece).digest() == digest
    if version.has_v2:
        for entry in meta.payload_files:
            data = contents["/".join(entry.path[1:])]
            if not data:
                assert entry.pieces_root is None
                continue
            assert entry.pieces_root == file_root(data)
            assert entry.offset % PL == 0
            if len(data) > PL:
                layer = meta.piece_layers[entry.pieces_root]
                hashes = [piece_hash_v2(data[i : i + PL], PL) for i in range(0, len(data), PL)]
                assert layer == b"".join(hashes)
    assert version.has_v1 == meta.is_v1 and version.has_v2 == meta.is_v2
    assert parse_torrent(meta.to_bytes()) == meta


def test_hybrid_is_default_and_pads_every_unaligned_file(tmp_path: Path) -> None:
    root = tmp_path / "payload"
    make_payload(root)
    meta = create_torrent(root, piece_length=PL)
    assert meta.is_hybrid
    for entry in meta.payload_files:
        if entry.length:
            assert entry.offset % PL == 0
    assert all(f.attr == "p" and f.path[1] == ".pad" for f in meta.files if f.pad)


def test_single_file_torrent_uses_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "one.bin"
    path.write_bytes(b"q" * (PL + 1))
    meta = create_torrent(
        path,
        piece_length=PL,
        options=TorrentOptions(
            trackers=(("http://t/announce",),),
            web_seeds=("http://w/",),
            private=True,
            comment="c",
            created_by="me",
        ),
    )
    assert meta.name == "one.bin"
    assert [f.path for f in meta.files] == [("one.bin",)]
    assert meta.num_pieces == 2 and meta.piece_size(1) == 1
    assert meta.private and meta.comment == "c" and meta.created_by == "me"
    assert meta.trackers == (("http://t/announce",),) and meta.web_seeds == ("http://w/",)
    assert meta.creation_date is not None


def test_auto_piece_length_is_a_power_of_two_of_at_least_16_kib() -> None:
    for total in (1, 10**6, 10**9, 10**12):
        length = choose_piece_length(total)
        assert length >= BLOCK_SIZE and length & (length - 1) == 0
    assert choose_piece_length(2**30) == 2**20


def test_piece_length_that_is_not_a_power_of_two_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    with pytest.raises(MetainfoError, match="power of two"):
        create_torrent(tmp_path / "f", piece_length=3 * BLOCK_SIZE)


def test_folder_without_data_is_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(MetainfoError, match="no files"):
        create_torrent(tmp_path / "empty")
    (tmp_path / "empty" / "zero").write_bytes(b"")
    with pytest.raises(MetainfoError, match="no data"):
        create_torrent(tmp_path / "empty")


def test_symlinks_are_not_followed(tmp_path: Path) -> None:
    root = tmp_path / "payload"
    root.mkdir()
    (root / "real").write_bytes(b"data")
    (tmp_path / "secret").write_bytes(b"outside")
    (root / "link").symlink_to(tmp_path / "secret")
    meta = create_torrent(root)
    assert [f.path for f in meta.payload_files] == [("payload", "real")]


def test_file_name_unusable_on_windows_is_refused_at_creation(tmp_path: Path) -> None:
    root = tmp_path / "payload"
    root.mkdir()
    (root / "what?").write_bytes(b"data")
    with pytest.raises(UnsafePathError, match="what"):
        create_torrent(root)


def test_single_file_hybrid_hashes_only_the_short_last_piece(tmp_path: Path) -> None:
    # Regression: the last v1 piece was hashed over stale bytes of the read buffer.
    data = os.urandom(2 * PL + 10)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    meta = create_torrent(path, piece_length=PL, chunk_bytes=4 * PL)
    assert meta.piece_hashes[-1] == hashlib.sha1(data[2 * PL :]).digest()


def test_v1_chunk_inside_a_file_that_starts_off_page_is_hashed(tmp_path: Path) -> None:
    # A v1 chunk can lie wholly inside a file at an offset that is not page aligned.
    root = tmp_path / "payload"
    root.mkdir()
    (root / "a").write_bytes(b"a" * 100)
    big = os.urandom(4 * PL)
    (root / "b").write_bytes(big)
    meta = create_torrent(root, version=TorrentVersion.V1, piece_length=PL, chunk_bytes=PL)
    space = b"a" * 100 + big
    expected = [hashlib.sha1(space[i : i + PL]).digest() for i in range(0, len(space), PL)]
    assert list(meta.piece_hashes) == expected


@pytest.mark.parametrize("version", list(TorrentVersion))
def test_pieces_read_in_several_parts_hash_like_one_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: TorrentVersion
) -> None:
    # Small reads split every piece into parts and v1 parts across two files.
    from servent.storage import torrent_creator

    monkeypatch.setattr(torrent_creator, "READ_BYTES", BLOCK_SIZE)
    root = tmp_path / "payload"
    root.mkdir()
    (root / "a").write_bytes(os.urandom(100))
    (root / "b").write_bytes(os.urandom(19 * BLOCK_SIZE + 5))
    small = create_torrent(
        root, version=version, piece_length=4 * BLOCK_SIZE, chunk_bytes=4 * BLOCK_SIZE
    )
    monkeypatch.setattr(torrent_creator, "READ_BYTES", 1 << 20)
    large = create_torrent(root, version=version, piece_length=4 * BLOCK_SIZE, chunk_bytes=1 << 20)
    assert small.info_bytes == large.info_bytes
    if version is TorrentVersion.V1:
        space = (root / "a").read_bytes() + (root / "b").read_bytes()
        assert list(small.piece_hashes) == [
            hashlib.sha1(space[i : i + 4 * BLOCK_SIZE]).digest()
            for i in range(0, len(space), 4 * BLOCK_SIZE)
        ]


@pytest.mark.parametrize("version", list(TorrentVersion))
def test_file_truncated_while_hashing_is_a_metainfo_error_not_sigbus(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: TorrentVersion
) -> None:
    # Regression: hashing through mmap died of SIGBUS when the file shrank meanwhile.
    from servent.storage import torrent_creator

    path = tmp_path / "shrinking.bin"
    path.write_bytes(os.urandom(64 * PL))
    real_read = torrent_creator._read_exactly
    reads: list[int] = []

    def read_then_shrink(fd: int, name: str, offset: int, target: memoryview) -> None:
        real_read(fd, name, offset, target)
        reads.append(offset)
        if len(reads) == 3:  # some pieces are hashed already: now the file shrinks
            os.truncate(path, PL)

    monkeypatch.setattr(torrent_creator, "_read_exactly", read_then_shrink)
    with pytest.raises(MetainfoError, match="became shorter"):
        create_torrent(path, version=version, piece_length=PL, chunk_bytes=4 * PL, workers=2)
    assert len(reads) >= 3
