"""BEP 19 URL rules for web seeds: which URL holds which file."""

from __future__ import annotations

from servent.codec.metainfo import FileEntry
from servent.net.web_seed import file_url


def test_single_file_url_names_the_file_or_its_folder() -> None:
    entry = FileEntry(path=("movie.mkv",), length=10, offset=0)
    assert file_url("http://h/files/movie.mkv", entry) == "http://h/files/movie.mkv"
    assert file_url("http://h/files/", entry) == "http://h/files/movie.mkv"


def test_multi_file_url_is_the_folder_above_the_torrent_folder() -> None:
    entry = FileEntry(path=("album", "cd 1", "track#1?.flac"), length=10, offset=0)
    expected = "http://h/music/album/cd%201/track%231%3F.flac"
    assert file_url("http://h/music/", entry) == expected
    assert file_url("http://h/music", entry) == expected


def test_path_components_cannot_climb_out_of_the_url() -> None:
    entry = FileEntry(path=("t", "a/b", ".."), length=1, offset=0)
    url = file_url("http://h/base/", entry)
    assert url == "http://h/base/t/a%2Fb/%2E%2E"
