"""How the engine orders a torrent's trackers: the torrent's tiers, then extras."""

from __future__ import annotations

from servent.net.engine import _tiers


def test_torrent_tiers_first_then_magnet_then_engine_extras_each_once() -> None:
    torrent = (("http://a/announce", "http://b/announce"), ("udp://c:1",))
    magnet = (["udp://c:1"], ["http://d/announce"])
    extras = (["http://a/announce"], ["http://e/announce"], [""])
    assert _tiers(torrent, magnet, extras) == [
        ["http://a/announce", "http://b/announce"],
        ["udp://c:1"],
        ["http://d/announce"],
        ["http://e/announce"],
    ]


def test_no_trackers_at_all() -> None:
    assert _tiers((), [], ([""],)) == []
