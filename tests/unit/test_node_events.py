"""Typed node events and their hub: order, bounded queues, unsubscribing, JSON."""

from __future__ import annotations

import asyncio
import json
from dataclasses import FrozenInstanceError, dataclass
from pathlib import Path

import pytest

from servent.node.config import load_config
from servent.node.events import (
    EVENT_TYPES,
    EventHub,
    EventsDropped,
    FilePrioritiesChanged,
    NodeEvent,
    PeerBanned,
    TorrentAdded,
    TorrentCompleted,
    TorrentErrored,
    event_type,
)
from servent.node.node import Node
from servent.storage.torrent_creator import create_torrent

TID = "ab" * 20


def _added(n: int) -> TorrentAdded:
    return TorrentAdded(TID, f"torrent {n}")


async def test_every_subscriber_gets_every_event_in_order() -> None:
    hub = EventHub()
    first, second = hub.subscribe(), hub.subscribe()
    sent = [_added(n) for n in range(5)]
    for event in sent:
        hub.emit(event)
    for subscription in (first, second):
        got = [await asyncio.wait_for(anext(subscription), 5) for _ in sent]
        assert got == sent


async def test_a_waiting_reader_is_woken_by_emit_without_polling() -> None:
    hub = EventHub()
    subscription = hub.subscribe()
    reader = asyncio.create_task(anext(subscription))
    await asyncio.sleep(0)  # let the reader block on the empty queue
    assert not reader.done()
    event = TorrentCompleted(TID, "done")
    hub.emit(event)
    assert await asyncio.wait_for(reader, 5) is event


async def test_a_slow_subscriber_loses_the_oldest_and_reads_a_drop_marker() -> None:
    hub = EventHub(queue_size=3)
    slow, fast = hub.subscribe(), hub.subscribe()
    sent = [_added(n) for n in range(10)]
    for event in sent:
        hub.emit(event)
        assert fast.get_nowait() is event  # a reader that keeps up loses nothing
    assert slow.pending == 3
    marker = await anext(slow)
    assert isinstance(marker, EventsDropped) and marker.count == 7
    assert [await anext(slow) for _ in range(3)] == sent[-3:]
    assert slow.get_nowait() is None


async def test_unsubscribed_streams_get_nothing_more_and_end() -> None:
    hub = EventHub()
    kept, left = hub.subscribe(), hub.subscribe()
    hub.emit(_added(0))
    await left.aclose()
    hub.emit(_added(1))
    assert hub.subscribers == 1
    assert [e async for e in left] == []
    assert (await anext(kept)).name == "torrent 0"
    assert (await anext(kept)).name == "torrent 1"


async def test_async_with_unsubscribes_on_exit() -> None:
    hub = EventHub()
    async with hub.subscribe() as subscription:
        hub.emit(_added(0))
        assert (await anext(subscription)).type == "torrent_added"
        assert hub.subscribers == 1
    assert hub.subscribers == 0


async def test_close_ends_streams_after_what_they_queued() -> None:
    hub = EventHub()
    subscription = hub.subscribe()
    reader = asyncio.create_task(_collect(subscription))
    hub.emit(_added(0))
    hub.close()
    assert [e.name for e in await asyncio.wait_for(reader, 5)] == ["torrent 0"]  # type: ignore[attr-defined]
    late = hub.subscribe()
    assert [e async for e in late] == []
    hub.emit(_added(1))  # after close: nobody to tell, and no error


async def _collect(subscription: object) -> list[NodeEvent]:
    return [e async for e in subscription]  # type: ignore[attr-defined]


def test_events_are_frozen_and_serialise_with_their_type() -> None:
    event = FilePrioritiesChanged(TID, (0, 1, 7), time=12.5)
    with pytest.raises(FrozenInstanceError):
        event.torrent_id = "x"  # type: ignore[misc]
    body = event.to_json()
    assert body == {
        "type": "file_priorities_changed",
        "time": 12.5,
        "torrent_id": TID,
        "priorities": [0, 1, 7],
    }
    assert json.loads(json.dumps(body)) == body
    banned = PeerBanned(TID, "127.0.0.9", 6881, "bad piece").to_json()
    assert (banned["type"], banned["host"], banned["port"]) == ("peer_banned", "127.0.0.9", 6881)


def test_the_issue_named_event_types_are_registered() -> None:
    names = {
        "torrent_added",
        "metadata_received",
        "torrent_completed",
        "torrent_errored",
        "torrent_removed",
        "torrent_paused",
        "torrent_resumed",
        "peer_banned",
        "events_dropped",
    }
    assert names <= set(EVENT_TYPES)
    assert all(cls.type == name for name, cls in EVENT_TYPES.items())


def test_a_new_event_type_is_one_decorated_class() -> None:
    @event_type("test_only_ping")
    @dataclass(frozen=True, slots=True)
    class Ping(NodeEvent):
        text: str

    try:
        assert EVENT_TYPES["test_only_ping"] is Ping
        assert Ping("hi", time=1.0).to_json() == {
            "type": "test_only_ping",
            "time": 1.0,
            "text": "hi",
        }
        with pytest.raises(ValueError, match="twice"):
            event_type("test_only_ping")(Ping)
    finally:
        del EVENT_TYPES["test_only_ping"]


async def test_a_torrent_that_cannot_start_is_pushed_as_errored(tmp_path: Path) -> None:
    folder = tmp_path / "album"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"x" * 50_000)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the download folder should go")
    config = load_config(
        None,
        {
            "data_dir": str(tmp_path / "data"),
            "dht_enabled": False,
            "lsd_enabled": False,
            "listen_host": "127.0.0.1",
            "listen_port": 0,
        },
    )
    async with Node(config) as node, node.events() as events:
        torrent_id = await node.add(create_torrent(folder).to_bytes(), blocker / "sub")
        added, errored = [await asyncio.wait_for(anext(events), 5) for _ in range(2)]
        await node.pause(torrent_id)
        paused = await asyncio.wait_for(anext(events), 5)
    assert isinstance(added, TorrentAdded) and added.torrent_id == torrent_id
    assert isinstance(errored, TorrentErrored) and "Not a directory" in errored.error
    assert errored.to_json()["type"] == "torrent_errored"
    assert paused.to_json() == {
        "type": "torrent_paused",
        "time": paused.time,
        "torrent_id": torrent_id,
    }
    assert blocker.read_text() == "a file where the download folder should go"
