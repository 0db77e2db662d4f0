"""What a node says about its torrents in search, and how results look to users.

Turns the node's torrents into :class:`IndexedTorrent` rows, rows into signed
entries (what others may find), and merged results into the JSON records of
``servent search --json`` and ``GET /api/search``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from servent.codec.compact import decode_peer, encode_peer
from servent.codec.magnet import Magnet
from servent.codec.node_id import format_node_id
from servent.node.search_index import IndexedTorrent
from servent.node.status import FileStatus, TorrentStatus
from servent.proto.search import FILE, PERSON, SearchEntry, SearchResult, words
from servent.proto.search.entry import MAX_PERSON_NAME

__all__ = [
    "ENTRY_LIFE",
    "MAX_SOURCES_IN_MAGNET",
    "file_entry",
    "indexed_torrent",
    "person_entry",
    "result_record",
    "short_id",
]

ENTRY_LIFE = 7200
MAX_SOURCES_IN_MAGNET = 8
MAX_ENTRY_FILE_NAMES = 8
COMPLETE_STATES = frozenset({"seeding", "finished", "complete"})


def indexed_torrent(
    status: TorrentStatus, files: Sequence[FileStatus], shared: bool
) -> IndexedTorrent:
    """A torrent of the node as the search index keeps it."""
    info_hash = bytes.fromhex(status.info_hash_v1 or status.info_hash_v2 or status.id)
    names = tuple(file.path.rsplit("/", 1)[-1] for file in files)
    complete = status.size > 0 and (status.progress >= 1.0 or status.state in COMPLETE_STATES)
    return IndexedTorrent(status.id, info_hash, status.name, status.size, names, shared, complete)


def _uncovered_names(torrent: IndexedTorrent) -> tuple[str, ...]:
    """File names that hold words the torrent's name does not (up to 8, so they are found)."""
    covered = set(words(torrent.name))
    extra: list[str] = []
    for name in torrent.file_names:
        if not set(words(name)) <= covered:
            extra.append(name.encode("utf-8")[:255].decode("utf-8", "ignore"))
            covered |= set(words(name))
            if len(extra) >= MAX_ENTRY_FILE_NAMES:
                break
    return tuple(extra)


def file_entry(
    torrent: IndexedTorrent,
    publisher: bytes,
    address: tuple[str, int],
    now: float,
    sign: Callable[[bytes], bytes],
) -> SearchEntry:
    name = torrent.name.encode("utf-8")[:255].decode("utf-8", "ignore") or torrent.torrent_id
    entry = SearchEntry(
        FILE, name, publisher, encode_peer(address), int(now) + ENTRY_LIFE,
        info_hash=torrent.info_hash, size=torrent.size, files=torrent.file_count,
        file_names=_uncovered_names(torrent),
    )  # fmt: skip
    return entry.signed(sign)


def person_entry(
    name: str,
    publisher: bytes,
    address: tuple[str, int],
    now: float,
    sign: Callable[[bytes], bytes],
) -> SearchEntry:
    shown = name.encode("utf-8")[:MAX_PERSON_NAME].decode("utf-8", "ignore")  # 64 bytes
    entry = SearchEntry(PERSON, shown, publisher, encode_peer(address), int(now) + ENTRY_LIFE)
    return entry.signed(sign)


def short_id(result: SearchResult) -> str:
    """What a user types after ``servent add``: 8 hex digits of the info-hash."""
    return result.key.hex()[:8]


def _address_text(compact: bytes) -> str:
    host, port = decode_peer(compact)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def magnet_of(result: SearchResult) -> str:
    entry = result.entry
    v1 = entry.info_hash if len(entry.info_hash) == 20 else None
    v2 = entry.info_hash if len(entry.info_hash) == 32 else None
    peers = tuple(decode_peer(a) for a in list(result.publishers.values())[:8])
    return Magnet(v1, v2, display_name=entry.name, peers=peers).to_uri()


def result_record(result: SearchResult) -> dict[str, object]:
    """One result as ``servent search --json`` prints it (people: node ID and addresses)."""
    entry = result.entry
    if entry.kind == PERSON:
        return {
            "name": entry.name,
            "id": format_node_id(entry.publisher),
            "addresses": [_address_text(entry.address)],
            "short_id": format_node_id(entry.publisher)[:8],
        }
    return {
        "name": entry.name,
        "infohash": entry.info_hash.hex(),
        "magnet": magnet_of(result),
        "size": entry.size,
        "files": entry.files,
        "sources": result.sources,
        "publisher": format_node_id(entry.publisher),
        "short_id": short_id(result),
    }
