"""The local search index: real SQLite FTS5 in a temporary data directory."""

from __future__ import annotations

import stat
from pathlib import Path

from servent.node.search_index import INDEX_FILE, IndexedTorrent, SearchIndex


def torrent(torrent_id: str, name: str, *files: str, complete: bool = True) -> IndexedTorrent:
    return IndexedTorrent(
        torrent_id, bytes.fromhex(torrent_id.ljust(40, "0")), name, 100, files, True, complete
    )


def names(found: list[IndexedTorrent]) -> list[str]:
    return [t.name for t in found]


def test_separators_case_accents_and_prefixes(tmp_path: Path) -> None:
    index = SearchIndex(tmp_path)
    index.put(torrent("aa", "Blue_Danube-Waltz.flac"))
    index.put(torrent("bb", "Gymnopédies", "Satie/Gymnopédie_No.1.ogg"))
    index.put(torrent("cc", "Radio Days"))
    assert names(index.search("danube waltz")) == ["Blue_Danube-Waltz.flac"]
    assert names(index.search("DANUBE")) == ["Blue_Danube-Waltz.flac"]
    assert names(index.search("danu walt")) == ["Blue_Danube-Waltz.flac"]
    assert names(index.search("gymnopedie")) == ["Gymnopédies"]
    assert names(index.search("satie")) == ["Gymnopédies"]  # a file name inside
    assert index.search("polka") == []
    assert index.search("") == []
    assert index.search('" OR * NEAR(') == []  # never read as FTS syntax
    index.close()


def test_replace_remove_and_answerable(tmp_path: Path) -> None:
    index = SearchIndex(tmp_path)
    index.put(torrent("aa", "Blue Danube", complete=False))
    assert names(index.search("danube")) == ["Blue Danube"]
    assert index.search("danube", answerable_only=True) == []
    assert index.answerable() == []
    index.put(torrent("aa", "Blue Danube", complete=True))
    assert names(index.search("danube", answerable_only=True)) == ["Blue Danube"]
    assert [t.torrent_id for t in index.answerable()] == ["aa"]
    index.remove("aa")
    assert index.search("danube") == [] and index.torrent_ids() == set()
    index.close()


def test_index_file_is_private_and_survives_a_restart(tmp_path: Path) -> None:
    index = SearchIndex(tmp_path)
    index.put(torrent("aa", "Blue Danube", "a.flac", "b.flac"))
    index.close()
    assert stat.S_IMODE((tmp_path / INDEX_FILE).stat().st_mode) == 0o600
    again = SearchIndex(tmp_path)
    found = again.search("blue")
    assert names(found) == ["Blue Danube"] and found[0].file_names == ("a.flac", "b.flac")
    assert found[0].file_count == 2
    again.close()


def test_name_matches_rank_before_file_name_matches(tmp_path: Path) -> None:
    index = SearchIndex(tmp_path)
    index.put(torrent("aa", "Collection", "waltz.flac", "other.flac", "more.flac"))
    index.put(torrent("bb", "Waltz"))
    assert names(index.search("waltz")) == ["Waltz", "Collection"]
    index.close()
