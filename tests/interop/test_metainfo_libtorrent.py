"""Torrents made by ``servent create`` load in libtorrent, and libtorrent's parse in servent.

For each payload the issue names (one byte; an empty file in a folder; a file
whose size is not a multiple of the piece length; a nested folder; unicode
names) and each kind (v1, v2, hybrid), both directions must agree on
info-hashes, file lists, piece hashes and piece layers.  libtorrent also
rechecks the payload against servent's torrent, which proves our v1 and v2
hashes on real data.  For v2 and hybrid both creators lay files out the same
way, so the info-hashes of the same payload are identical.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import libtorrent as lt
import pytest

from servent.cli.main import main
from servent.codec.bencode import decode
from servent.codec.magnet import parse_magnet
from servent.codec.metainfo import Metainfo, parse_torrent
from servent.codec.metainfo.build import TorrentVersion
from servent.storage.torrent_creator import create_torrent

pytestmark = pytest.mark.interop

KIB = 1024


def one_byte(root: Path) -> Path:
    (root / "one.bin").write_bytes(b"\x01")
    return root / "one.bin"


def empty_file_in_folder(root: Path) -> Path:
    folder = root / "with-empty"
    folder.mkdir()
    (folder / "empty.txt").write_bytes(b"")
    (folder / "notes.txt").write_bytes(b"some text\n" * 500)
    return folder


def unaligned_large_file(root: Path) -> Path:
    path = root / "large.bin"
    path.write_bytes(bytes(i * 31 % 256 for i in range(1024 * KIB + 12345)))
    return path


def nested_folder(root: Path) -> Path:
    folder = root / "nested"
    for rel, size in [("a/b/c/deep.bin", 70 * KIB), ("a/x.txt", 3), ("top.dat", 16 * KIB),
                      ("a/b/mid.bin", 33 * KIB + 1), ("z/last", 100)]:
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes((i + size) % 253 for i in range(size)))
    return folder


def unicode_names(root: Path) -> Path:
    folder = root / "ünï 日本"
    (folder / "日本語").mkdir(parents=True)
    (folder / "Ελληνικά.txt").write_bytes("Καλημέρα\n".encode() * 100)
    (folder / "日本語" / "ファイル.bin").write_bytes(b"\xe3" * 20000)
    (folder / "émoji 🎉.txt").write_bytes(b"party")
    return folder


PAYLOADS: dict[str, tuple[Callable[[Path], Path], int]] = {
    "one-byte": (one_byte, 16 * KIB),
    "empty-file-in-folder": (empty_file_in_folder, 16 * KIB),
    "unaligned-large-file": (unaligned_large_file, 64 * KIB),
    "nested-folder": (nested_folder, 16 * KIB),
    "unicode-names": (unicode_names, 32 * KIB),
}
LT_FLAGS = {
    TorrentVersion.V1: lt.create_torrent.v1_only,
    TorrentVersion.V2: lt.create_torrent.v2_only,
    TorrentVersion.HYBRID: 0,
}
CASES = [(name, version) for name in PAYLOADS for version in TorrentVersion]


def make_payload(tmp_path: Path, name: str) -> tuple[Path, int]:
    build, piece_length = PAYLOADS[name]
    root = tmp_path / "payload"
    root.mkdir()
    return build(root), piece_length


def libtorrent_torrent(path: Path, piece_length: int, version: TorrentVersion) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        storage = lt.file_storage()
        lt.add_files(storage, str(path))
        creator = lt.create_torrent(storage, piece_length, flags=LT_FLAGS[version])
    creator.add_tracker("http://127.0.0.1:6969/announce")
    lt.set_piece_hashes(creator, str(path.parent))
    return bytes(lt.bencode(creator.generate()))


def lt_files(info: Any) -> list[tuple[str, int]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        files = info.files()
    return [
        (files.file_path(i), files.file_size(i))
        for i in range(files.num_files())
        if not files.file_flags(i) & lt.file_storage.flag_pad_file
    ]


def servent_files(meta: Metainfo) -> list[tuple[str, int]]:
    return [("/".join(f.path), f.length) for f in meta.payload_files]


def lt_hashes(info: Any) -> tuple[bytes | None, bytes | None]:
    hashes = info.info_hashes
    if callable(hashes):  # a method on torrent_info, an attribute on add_torrent_params
        hashes = hashes()
    v1 = bytes.fromhex(str(hashes.v1)) if hashes.has_v1() else None
    v2 = bytes.fromhex(str(hashes.v2)) if hashes.has_v2() else None
    return v1, v2


@pytest.fixture(scope="module")
def session() -> Iterator[Any]:
    settings = {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        "listen_system_port_fallback": False,
        "alert_mask": lt.alert_category.status | lt.alert_category.error,
    }
    ses = lt.session(settings)
    yield ses
    del ses


def wait_until_seeding(ses: Any, handle: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = handle.status()
        if status.is_seeding or status.errc.value():
            return status
        ses.wait_for_alert(100)
        ses.pop_alerts()
    return handle.status()


@pytest.mark.parametrize(("payload", "version"), CASES)
def test_servent_torrent_loads_and_verifies_in_libtorrent(
    tmp_path: Path, session: Any, payload: str, version: TorrentVersion
) -> None:
    path, piece_length = make_payload(tmp_path, payload)
    out = tmp_path / "made-by-servent.torrent"
    argv = ["create", str(path), "-o", str(out), f"--{version.value}",
            "--piece-length", str(piece_length), "--tracker", "http://127.0.0.1:6969/announce"]
    assert main(argv) == 0
    meta = parse_torrent(out.read_bytes())
    info = lt.torrent_info(str(out))
    assert lt_hashes(info) == (meta.info_hash_v1, meta.info_hash_v2)
    assert lt_files(info) == servent_files(meta)
    assert info.num_pieces() == meta.num_pieces
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert [t.url for t in info.trackers()] == ["http://127.0.0.1:6969/announce"]
    if meta.is_v1:
        assert [bytes(info.hash_for_piece(i)) for i in range(info.num_pieces())] == list(
            meta.piece_hashes
        )
    # libtorrent checks the real payload against our piece hashes / piece layers.
    params = lt.add_torrent_params()
    params.ti = info
    params.save_path = str(path.parent)
    handle = session.add_torrent(params)
    try:
        status = wait_until_seeding(session, handle)
        assert status.is_seeding, (status.state, status.errc.message())
        assert status.total_wanted == meta.total_length
    finally:
        session.remove_torrent(handle)
    # Our magnet link means the same torrent to libtorrent.
    params = lt.parse_magnet_uri(meta.magnet())
    assert lt_hashes(params) == (meta.info_hash_v1, meta.info_hash_v2)
    assert params.name == meta.name


@pytest.mark.parametrize(("payload", "version"), CASES)
def test_libtorrent_torrent_parses_identically_in_servent(
    tmp_path: Path, payload: str, version: TorrentVersion
) -> None:
    path, piece_length = make_payload(tmp_path, payload)
    data = libtorrent_torrent(path, piece_length, version)
    info = lt.torrent_info(data)
    meta = parse_torrent(data)
    assert (meta.info_hash_v1, meta.info_hash_v2) == lt_hashes(info)
    assert servent_files(meta) == lt_files(info)
    assert meta.num_pieces == info.num_pieces()
    assert meta.piece_length == info.piece_length()
    assert meta.trackers == (("http://127.0.0.1:6969/announce",),)
    if version.has_v1:
        assert list(meta.piece_hashes) == [
            bytes(info.hash_for_piece(i)) for i in range(info.num_pieces())
        ]
    else:
        assert meta.piece_hashes == ()
    top = decode(data)
    assert isinstance(top, dict)
    assert dict(meta.piece_layers) == top.get(b"piece layers", {})
    # libtorrent counts a v2-only file's last piece up to the piece boundary (its
    # internal padding); servent counts the hashed bytes, as BEP 52 hashes them.
    for index in range(meta.num_pieces):
        if version.has_v1:
            assert meta.piece_size(index) == info.piece_size(index)
        else:
            assert 0 < meta.piece_size(index) <= info.piece_size(index)
    if not version.has_v1:
        assert sum(meta.piece_size(i) for i in range(meta.num_pieces)) == meta.total_length
    # libtorrent's magnet link parses to the same hashes and name.
    magnet = parse_magnet(lt.make_magnet_uri(info))
    assert (magnet.info_hash_v1, magnet.info_hash_v2) == (meta.info_hash_v1, meta.info_hash_v2)
    assert magnet.display_name == meta.name
    # v2 and hybrid: servent lays out the same payload exactly as libtorrent does.
    if version.has_v2:
        ours = create_torrent(path, version=version, piece_length=piece_length)
        assert ours.info_bytes == meta.info_bytes
        assert dict(ours.piece_layers) == dict(meta.piece_layers)
    else:
        ours = create_torrent(path, version=version, piece_length=piece_length)
        assert sorted(servent_files(ours)) == sorted(servent_files(meta))
