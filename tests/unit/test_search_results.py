"""How a node describes its torrents in search and shows results."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from servent.codec.bencode import decode, encode
from servent.codec.magnet import parse_magnet
from servent.codec.node_id import format_node_id
from servent.node.search_index import IndexedTorrent
from servent.node.search_results import (
    file_entry,
    indexed_torrent,
    person_entry,
    result_record,
)
from servent.node.status import FileStatus, TorrentStatus
from servent.proto.search import QueryResults, entry_from_value, verify_entry

NOW = 1_000_000.0
KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def status(state: str, progress: float, size: int = 100) -> TorrentStatus:
    return TorrentStatus(
        id="ab" * 20, name="music", info_hash_v1="ab" * 20, info_hash_v2=None, state=state,
        progress=progress, size=size, have_bytes=0, download_rate=0.0, upload_rate=0.0,
        peers=0, eta=None, paused=False, save_path="/tmp", added_at=0.0, magnet=None,
    )  # fmt: skip


def test_indexed_torrent_is_complete_only_when_all_is_there() -> None:
    files = [
        FileStatus(0, "music/Blue_Danube-Waltz.flac", 60, 1, 1.0),
        FileStatus(1, "music/a.txt", 40, 1, 1.0),
    ]
    done = indexed_torrent(status("seeding", 1.0), files, shared=True)
    assert done.complete and done.shared and done.info_hash == bytes.fromhex("ab" * 20)
    assert done.file_names == ("Blue_Danube-Waltz.flac", "a.txt")
    assert not indexed_torrent(status("downloading", 0.5), files, shared=False).complete
    assert not indexed_torrent(status("metadata", 0.0, size=0), [], shared=False).complete


def test_file_entry_is_signed_and_carries_the_file_names_its_name_lacks() -> None:
    torrent = IndexedTorrent(
        "ab" * 20, bytes(20), "music", 100, ("Blue_Danube-Waltz.flac", "MUSIC"), True, True
    )
    entry = file_entry(torrent, PUBLIC, ("127.0.0.1", 6881), NOW, KEY.sign)
    assert verify_entry(entry)
    assert entry.file_names == ("Blue_Danube-Waltz.flac",)
    assert entry.expires == int(NOW) + 7200 and entry.files == 2


def test_records_for_files_and_people() -> None:
    torrent = IndexedTorrent("ab" * 20, bytes(range(20)), "Blue Danube", 100, ("x",), True, True)
    entry = file_entry(torrent, PUBLIC, ("127.0.0.1", 6881), NOW, KEY.sign)
    results = QueryResults("danube", verify=verify_entry)
    (result,), _ = results.add([entry], NOW)
    record = result_record(result)
    assert record["infohash"] == bytes(range(20)).hex() and record["sources"] == 1
    assert record["publisher"] == format_node_id(PUBLIC)
    assert record["short_id"] == bytes(range(20)).hex()[:8]
    magnet = parse_magnet(str(record["magnet"]))
    assert magnet.info_hash_v1 == bytes(range(20)) and magnet.peers == (("127.0.0.1", 6881),)
    person = person_entry("Alice Liddell", PUBLIC, ("127.0.0.1", 6881), NOW, KEY.sign)
    people = QueryResults("alice", people=True, verify=verify_entry)
    (found,), _ = people.add([person], NOW)
    shown = result_record(found)
    assert shown["id"] == format_node_id(PUBLIC) and shown["addresses"] == ["127.0.0.1:6881"]


def test_a_long_display_name_is_cut_to_the_wire_bound_on_a_character_boundary() -> None:
    """Regression: the name setting allows 64 characters, the wire 64 bytes."""
    name = "Zoë " * 16  # 64 characters, 80 bytes
    entry = person_entry(name, PUBLIC, ("127.0.0.1", 6881), NOW, KEY.sign)
    assert len(entry.name.encode()) <= 64 and name.startswith(entry.name)
    assert entry_from_value(decode(encode(entry.to_dict()))) == entry
    assert verify_entry(entry)


def test_big_entries_are_cut_into_messages_under_the_bound() -> None:
    """Regression: 100 entries with long file names made a store over 60,000 bytes."""
    from servent.net.search_driver import result_batches, store_messages
    from servent.proto.search import decode_message, encode_message
    from servent.proto.search.frames import MAX_MESSAGE

    names = tuple(f"{i} " + "é" * 300 for i in range(20))  # 600 bytes each, cut to 255
    entries = [
        file_entry(
            IndexedTorrent("ab" * 20, bytes([n]) * 20, "x" * 255, 1, names, True, True),
            PUBLIC,
            ("127.0.0.1", 6881),
            NOW,
            KEY.sign,
        )
        for n in range(150)
    ]
    assert all(len(e.file_names) == 8 for e in entries)
    assert all(len(name.encode()) <= 255 for e in entries for name in e.file_names)
    stores = store_messages(entries, forward=True)
    batches = result_batches(b"12345678", entries)
    for message in (*stores, *batches):
        data = encode_message(message)
        assert len(data) <= MAX_MESSAGE
        assert decode_message(data) == message
    assert sum(len(m.entries) for m in stores) == sum(len(b.entries) for b in batches) == 150
