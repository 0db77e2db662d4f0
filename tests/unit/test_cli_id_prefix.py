"""Torrent ids on the command line: empty, short or ambiguous prefixes never pick a torrent."""

from __future__ import annotations

import pytest

from servent.cli.api_client import MIN_ID_PREFIX, match_id
from servent.errors import DaemonError

TORRENTS = [
    {"id": "abcd" + "1" * 36, "name": "album"},
    {"id": "abce" + "2" * 36, "name": "movie"},
    {"id": "9f00" + "3" * 36, "name": "notes"},
]


def test_full_id_and_unique_prefix_are_accepted() -> None:
    assert match_id(TORRENTS, TORRENTS[2]["id"]) == TORRENTS[2]["id"]
    assert match_id(TORRENTS, "ABCD") == TORRENTS[0]["id"]
    assert match_id(TORRENTS, " 9f003 ") == TORRENTS[2]["id"]
    assert MIN_ID_PREFIX == 4


@pytest.mark.parametrize("given", ["", "   "])
def test_empty_id_is_an_error_naming_every_candidate(given: str) -> None:
    with pytest.raises(DaemonError, match="no torrent id given") as caught:
        match_id(TORRENTS, given)
    for torrent in TORRENTS:
        assert torrent["id"][:12] in str(caught.value) and torrent["name"] in str(caught.value)


def test_too_short_prefix_names_the_torrents_it_could_mean() -> None:
    with pytest.raises(DaemonError, match="at least 4 hex characters") as caught:
        match_id(TORRENTS, "abc")
    message = str(caught.value)
    assert "album" in message and "movie" in message and "notes" not in message
    with pytest.raises(DaemonError, match="at least 4"):
        match_id([TORRENTS[2]], "9")  # even when only one torrent matches


def test_ambiguous_prefix_names_the_candidates() -> None:
    many = [{"id": f"abcd{n:036x}", "name": f"t{n}"} for n in range(8)]
    with pytest.raises(DaemonError, match="ambiguous: it matches 8 torrents") as caught:
        match_id(many, "abcd")
    assert "t0" in str(caught.value) and "and 3 more" in str(caught.value)


def test_unknown_and_non_hex_prefixes_are_errors() -> None:
    with pytest.raises(DaemonError, match="no torrent id starts with '0000'"):
        match_id(TORRENTS, "0000")
    with pytest.raises(DaemonError, match="not a torrent id prefix"):
        match_id(TORRENTS, "album")
    with pytest.raises(DaemonError, match="no torrents"):
        match_id([], "")
