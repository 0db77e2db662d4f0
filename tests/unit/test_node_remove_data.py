"""``Node.remove(delete_data=True)`` keeps every file servent did not create, byte for byte.

Real files and a real state database; no peers (the download side is covered
end to end in ``tests/e2e/test_remove_keeps_user_data.py``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from network_nodes import loopback_node
from servent.node.state import StateStore
from servent.storage.torrent_creator import create_torrent


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _album(root: Path) -> Path:
    folder = root / "album"
    (folder / "cd2").mkdir(parents=True)
    (folder / "one.ogg").write_bytes(bytes(range(256)) * 300)
    (folder / "cd2" / "two.ogg").write_bytes(b"two" * 9000)
    (folder / "liner.txt").write_bytes(b"notes " * 700)
    return folder


async def test_share_then_remove_with_data_keeps_the_whole_folder(tmp_path: Path) -> None:
    folder = _album(tmp_path / "Music")
    (folder / ".hidden-user-file").write_bytes(b"not part of the torrent? it is, still kept")
    before = _tree(tmp_path / "Music")
    async with loopback_node(tmp_path / "data") as node:
        shared = await node.share(folder)
        result = await node.remove(shared.id, delete_data=True)
    assert (result.data_deleted, result.deleted_files) == (False, 0)
    assert result.reason is not None and "nothing deleted" in result.reason
    assert _tree(tmp_path / "Music") == before


async def test_shared_folder_stays_the_users_after_a_restart(tmp_path: Path) -> None:
    folder = _album(tmp_path / "Music")
    before = _tree(tmp_path / "Music")
    async with loopback_node(tmp_path / "data") as node:
        shared = await node.share(folder)
    async with loopback_node(tmp_path / "data") as node:
        assert (await node.remove(shared.id, delete_data=True)).data_deleted is False
    assert _tree(tmp_path / "Music") == before


async def test_torrent_added_over_a_prefilled_file_deletes_only_what_servent_made(
    tmp_path: Path,
) -> None:
    meta = create_torrent(_album(tmp_path / "source"))
    target = tmp_path / "Downloads"
    (target / "album").mkdir(parents=True)
    (target / "album" / "liner.txt").write_bytes(b"notes " * 700)  # the user put it there
    (target / "album" / "my-review.txt").write_bytes(b"the user's own words")
    (target / "bank.csv").write_bytes(b"1,2,3\n" * 50)
    user_files = _tree(target)
    async with loopback_node(tmp_path / "data") as node:
        torrent_id = await node.add(meta.to_bytes(), save_path=target)
        created = [target / "album" / "one.ogg.part", target / "album" / "cd2" / "two.ogg.part"]
        assert all(p.exists() for p in created)  # storage opened: servent's partial files
        result = await node.remove(torrent_id, delete_data=True)
    assert (result.data_deleted, result.deleted_files, result.kept_files) == (True, 2, 0)
    assert not any(p.exists() for p in created)
    assert not (target / "album" / "cd2").exists()  # emptied by the deletion
    assert _tree(target) == user_files  # the pre-filled file and the others, byte for byte


async def test_magnet_without_metadata_deletes_nothing(tmp_path: Path) -> None:
    async with loopback_node(tmp_path / "data") as node:
        torrent_id = await node.add("magnet:?xt=urn:btih:" + "ab" * 20 + "&dn=x")
        result = await node.remove(torrent_id, delete_data=True)
    assert result.data_deleted is False and "metadata" in (result.reason or "")


async def test_record_from_before_created_files_were_kept_deletes_nothing(tmp_path: Path) -> None:
    meta = create_torrent(_album(tmp_path / "source"))
    target = tmp_path / "Downloads"
    async with loopback_node(tmp_path / "data") as node:
        torrent_id = await node.add(meta.to_bytes(), save_path=target)
    db = sqlite3.connect(tmp_path / "data" / "state.sqlite3")
    db.execute("UPDATE torrents SET created_files = NULL")  # as schema 2 left it
    db.commit()
    db.close()
    (target / "album" / "one.ogg").parent.mkdir(parents=True, exist_ok=True)
    (target / "album" / "one.ogg").write_bytes(b"maybe the user's")
    before = _tree(target)
    async with loopback_node(tmp_path / "data") as node:
        result = await node.remove(torrent_id, delete_data=True)
    assert result.data_deleted is False and "does not know" in (result.reason or "")
    assert _tree(target) == before


def test_schema_1_database_gains_created_files_as_unknown(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "state.sqlite3")
    db.execute(
        "CREATE TABLE torrents (id TEXT PRIMARY KEY, info_hash_v1 BLOB, info_hash_v2 BLOB,"
        " name TEXT NOT NULL, metainfo BLOB, magnet TEXT, save_path TEXT NOT NULL,"
        " paused INTEGER NOT NULL DEFAULT 0, file_priorities TEXT NOT NULL DEFAULT '[]',"
        " download_limit INTEGER NOT NULL DEFAULT 0, upload_limit INTEGER NOT NULL DEFAULT 0,"
        " added_at REAL NOT NULL)"
    )
    for statement in (
        "CREATE TABLE resume (key TEXT PRIMARY KEY, data BLOB NOT NULL)",
        "CREATE TABLE dht_nodes (node_id BLOB NOT NULL, host TEXT NOT NULL,"
        " port INTEGER NOT NULL, PRIMARY KEY (host, port))",
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE shared_folders (path TEXT PRIMARY KEY, torrent_id TEXT,"
        " added_at REAL NOT NULL)",
        "INSERT INTO torrents (id, name, save_path, added_at) VALUES ('ab', 'old', '/x', 1.0)",
        "PRAGMA user_version=1",
    ):
        db.execute(statement)
    db.commit()
    db.close()
    store = StateStore(tmp_path)
    (record,) = store.torrents()
    assert record.created_files is None
    store.set_created_files("ab", [2, 0])
    assert store.get_torrent("ab").created_files == (0, 2)  # type: ignore[union-attr]
