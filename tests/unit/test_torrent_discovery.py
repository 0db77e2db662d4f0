"""TorrentDiscovery's schedules with stand-in tracker and DHT (no sockets).

Intervals are shrunk to tens of milliseconds; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from servent.codec.tracker import AnnounceRequest, AnnounceResponse, ScrapeEntry
from servent.errors import TrackerError
from servent.net.torrent_discovery import DiscoveryConfig, Progress, TorrentDiscovery

FAST = DiscoveryConfig(
    tracker_min_interval=0.05, tracker_retry=0.05, poll_interval=0.01,
    dht_interval=10.0, dht_retry=10.0, dht_first_retry=0.05, lsd_interval=0.05,
)  # fmt: skip
HASH = bytes(range(20))
PEER_ID = b"-SV0000-abcdefghijkl"


@dataclass
class FakeTracker:
    """Answers announces from a script of replies (an exception fails the announce)."""

    replies: list[AnnounceResponse | Exception] = field(default_factory=list)
    log: list[tuple[str, AnnounceRequest]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)

    async def announce(self, url: str, req: AnnounceRequest) -> AnnounceResponse:
        self.log.append((url, req))
        self.times.append(asyncio.get_running_loop().time())
        reply = self.replies.pop(0) if self.replies else AnnounceResponse(interval=3600)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def scrape(self, url: str, hashes: list[bytes]) -> dict[bytes, ScrapeEntry]:
        return {hashes[0]: ScrapeEntry(complete=3, downloaded=7, incomplete=1)}

    def events(self) -> list[str]:
        return [req.event for _, req in self.log]


@dataclass
class _Done:
    peers: tuple[tuple[str, int], ...]


PeerBatch = Callable[[tuple[tuple[str, int], ...]], None]


@dataclass
class FakeDht:
    peers: list[tuple[tuple[str, int], ...]] = field(default_factory=list)
    announced: list[tuple[bytes, int]] = field(default_factory=list)
    looked_up: list[bytes] = field(default_factory=list)

    async def announce(self, info_hash: bytes, port: int, *, on_peers: PeerBatch) -> _Done:
        self.announced.append((info_hash, port))
        return self._answer(on_peers)

    async def get_peers(self, info_hash: bytes, *, on_peers: PeerBatch) -> _Done:
        self.looked_up.append(info_hash)
        return self._answer(on_peers)

    def _answer(self, on_peers: PeerBatch) -> _Done:
        """Like the driver: the peers go to ``on_peers`` as they arrive, then the final event."""
        peers = self.peers.pop(0) if self.peers else ()
        if peers:
            on_peers(peers)
        return _Done(peers)


@dataclass
class FakeLsd:
    sent: list[tuple[bytes, int]] = field(default_factory=list)

    def announce(self, info_hash: bytes, port: int, now: float) -> bool:
        self.sent.append((info_hash, port))
        return True


async def until(condition: Callable[[], object], within: float = 5.0) -> None:
    """Poll the stand-ins' records (they offer nothing to await) under a deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met within {within} s")
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def running(discovery: TorrentDiscovery) -> AsyncIterator[None]:
    task = asyncio.get_running_loop().create_task(discovery.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def make(found: list[tuple[list[tuple[str, int]], str]], **kwargs: object) -> TorrentDiscovery:
    return TorrentDiscovery(
        info_hashes=kwargs.pop("info_hashes", [HASH]),  # type: ignore[arg-type]
        peer_id=PEER_ID,
        port=6881,
        sink=lambda peers, source: found.append((list(peers), source)),
        config=FAST,
        rng=random.Random(1),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_started_then_completed_then_stopped_with_progress() -> None:
    tracker = FakeTracker([AnnounceResponse(interval=3600, peers=(("127.0.0.2", 7000),))])
    found: list[tuple[list[tuple[str, int]], str]] = []
    left = [1000]
    discovery = make(
        found, trackers=[["http://t/announce"]], tracker_client=tracker,
        progress=lambda: Progress(uploaded=5, downloaded=10, left=left[0]),
        wants_peers=lambda: False,
    )  # fmt: skip
    async with running(discovery):
        await until(lambda: found)
        assert found == [([("127.0.0.2", 7000)], "tracker")]
        assert tracker.events() == ["started"]
        assert tracker.log[0][1].left == 1000 and tracker.log[0][1].port == 6881
        left[0] = 0
        discovery.completed()
        await until(lambda: len(tracker.log) == 2)
        assert tracker.events() == ["started", "completed"] and tracker.log[1][1].left == 0
    await discovery.announce_stopped()
    assert tracker.events() == ["started", "completed", "stopped"]
    assert (await discovery.scrape())["http://t/announce"].complete == 3


async def test_failing_tracker_falls_back_to_the_next_tier_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = FakeTracker([TrackerError("tracker response is not bencoded")])
    found: list[tuple[list[tuple[str, int]], str]] = []
    discovery = make(
        found, trackers=[["http://bad/announce"], ["udp://good:1"]], tracker_client=tracker,
        wants_peers=lambda: False,
    )  # fmt: skip
    async with running(discovery):
        await until(lambda: len(tracker.log) == 2)
    assert [url for url, _ in tracker.log] == ["http://bad/announce", "udp://good:1"]
    assert tracker.events() == ["started", "started"]  # 'started' until one answers
    assert discovery.tracker_errors == 1
    assert any("http://bad/announce: announce failed" in r.getMessage() for r in caplog.records)


async def test_short_of_peers_reannounces_early_but_not_below_the_floor() -> None:
    tracker = FakeTracker()
    found: list[tuple[list[tuple[str, int]], str]] = []
    short = [False]
    discovery = make(
        found, trackers=[["http://t/announce"]], tracker_client=tracker,
        wants_peers=lambda: short[0],
    )  # fmt: skip
    async with running(discovery):
        await until(lambda: len(tracker.log) == 1)
        await asyncio.sleep(0.2)  # the interval is an hour: nothing more while content
        assert len(tracker.log) == 1
        short[0] = True
        await until(lambda: len(tracker.log) >= 3)
    assert {req.port for _, req in tracker.log} == {6881}
    assert set(tracker.events()[1:]) == {""}
    gaps = [later - earlier for earlier, later in itertools.pairwise(tracker.times)]
    assert min(gaps[1:]) >= FAST.tracker_min_interval * 0.9, gaps


async def test_dht_announces_both_hashes_and_retries_soon_while_nobody_is_found() -> None:
    dht = FakeDht(peers=[(), (), (("127.0.0.3", 9000),)])
    found: list[tuple[list[tuple[str, int]], str]] = []
    v2 = bytes(range(32, 64))
    discovery = make(found, info_hashes=[HASH, v2], dht=dht, wants_peers=lambda: True)
    assert discovery.info_hashes == (HASH, v2[:20])
    async with running(discovery):
        await until(lambda: found)
    assert found == [([("127.0.0.3", 9000)], "dht")]
    assert dht.announced[:2] == [(HASH, 6881), (v2[:20], 6881)]
    assert discovery.dht_rounds >= 2


async def test_metadata_discovery_looks_up_without_announcing_and_lsd_repeats() -> None:
    dht = FakeDht()
    lsd = FakeLsd()
    found: list[tuple[list[tuple[str, int]], str]] = []
    discovery = make(found, dht=dht, dht_announce=False, lsd=lsd)
    assert discovery.has_sources
    async with running(discovery):
        await until(lambda: len(lsd.sent) >= 2 and dht.looked_up)
    assert not dht.announced and dht.looked_up[0] == HASH
    assert lsd.sent[0] == (HASH, 6881)
    discovery.deliver([("127.0.0.4", 0), ("127.0.0.4", 1)], "lsd")
    assert found[-1] == ([("127.0.0.4", 1)], "lsd")  # port 0 is never a peer


async def test_no_sources_at_all() -> None:
    discovery = TorrentDiscovery(
        info_hashes=[HASH], peer_id=PEER_ID, port=1, sink=lambda p, s: None,
        trackers=[["http://t/announce"]], tracker_client=None,
    )  # fmt: skip
    assert not discovery.has_sources


async def test_a_newcomer_heard_on_lsd_gets_an_answer_once_and_not_below_the_floor() -> None:
    lsd = FakeLsd()
    found: list[tuple[list[tuple[str, int]], str]] = []
    config = dataclasses.replace(FAST, lsd_interval=3600.0, lsd_reply_interval=0.05)
    discovery = TorrentDiscovery(
        info_hashes=[HASH], peer_id=PEER_ID, port=6881, sink=lambda p, s: found.append((p, s)),
        lsd=lsd, config=config,  # type: ignore[arg-type]
    )  # fmt: skip
    async with running(discovery):
        await until(lambda: len(lsd.sent) == 1)  # the announce on start
        discovery.heard_on_lsd(("10.0.0.7", 7000))
        await until(lambda: len(lsd.sent) == 2)  # answered after the floor
        discovery.heard_on_lsd(("10.0.0.7", 7000))  # the same neighbour again: no answer
        await asyncio.sleep(0.2)  # a window in which no announce may go out
        assert len(lsd.sent) == 2
    assert [(list(p), s) for p, s in found] == [([("10.0.0.7", 7000)], "lsd")] * 2


async def _stop_turns_after_a_newcomer(turns: int) -> str:
    """Cancel a running discovery ``turns`` loop turns after LSD hears a newcomer."""
    lsd = FakeLsd()
    config = dataclasses.replace(FAST, lsd_interval=3600.0, lsd_reply_interval=3600.0)
    discovery = TorrentDiscovery(
        info_hashes=[HASH], peer_id=PEER_ID, port=6881, sink=lambda p, s: None,
        lsd=lsd, config=config,  # type: ignore[arg-type]
    )  # fmt: skip
    task = asyncio.get_running_loop().create_task(discovery.run())
    await until(lambda: len(lsd.sent) == 1)  # the announce on start; now waiting
    discovery.heard_on_lsd(("10.0.0.7", 7000))
    for _ in range(turns):
        await asyncio.sleep(0)
    task.cancel()
    await asyncio.wait([task], timeout=2.0)  # waits without cancelling it again
    if task.done():
        return "stopped" if task.cancelled() else "ended by itself"
    for child in asyncio.all_tasks():  # the LSD loop that ignored its cancellation
        if child.get_name().startswith("lsd "):
            child.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return "cancellation lost"


async def test_discovery_stopped_as_a_newcomer_is_heard_on_lsd_stops() -> None:
    """Regression: on Python 3.11 ``wait_for`` lost a cancellation that came in the turns
    where LSD heard a newcomer, and the torrent's discovery never stopped."""
    outcomes = [await _stop_turns_after_a_newcomer(turns) for turns in range(6)]
    assert outcomes == ["stopped"] * 6
