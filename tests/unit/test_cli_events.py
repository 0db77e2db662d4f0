"""``servent events`` without --json: one readable line per event."""

from __future__ import annotations

import time

from servent.cli.commands.events import event_line
from servent.node.events import PeerBanned, TorrentAdded

TID = "0123456789ab" + "cd" * 14


def test_a_readable_line_has_time_type_short_id_and_fields() -> None:
    at = time.mktime((2026, 12, 6, 13, 4, 5, 0, 0, -1))
    line = event_line(PeerBanned(TID, "127.0.0.9", 6881, "bad piece 3", time=at).to_json())
    assert (
        line == "13:04:05  peer_banned  0123456789ab  host=127.0.0.9  port=6881  reason=bad piece 3"
    )
    added = event_line(TorrentAdded(TID, "album", time=at).to_json())
    assert added.endswith("torrent_added  0123456789ab  name=album")


def test_events_without_a_torrent_or_time_still_print() -> None:
    assert event_line({"type": "settings_changed", "time": 0, "values": {"a": 1}}).endswith(
        'settings_changed  values={"a": 1}'
    )
    assert event_line({"type": "future_event"}).split("  ")[1] == "future_event"
