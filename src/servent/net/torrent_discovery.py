"""Finding peers for one torrent: trackers, the DHT and local service discovery.

One :class:`TorrentDiscovery` per torrent (or per magnet whose metadata is
being fetched), run as one owner task by the engine.  Inside, a task group
holds one loop per source:

* trackers (BEP 3/15, tiers of BEP 12): ``started`` first, then the interval
  the tracker asks for, ``completed`` when the download finishes, an early
  re-announce when the torrent runs short of peers (never before the
  tracker's ``min interval``), and ``stopped`` from :meth:`announce_stopped`;
* the DHT (shared :class:`~servent.net.dht_driver.DhtDriver`, not owned):
  ``announce_peer`` (which also returns peers) for the v1 and the truncated
  v2 info-hash on start, on a schedule and when peers run short;
* LSD (shared :class:`~servent.net.lsd.LsdDriver`): a multicast announce on
  start and on a schedule, on IPv4 and IPv6 alike; answers arrive through the
  engine's dispatcher.

Every peer found is handed to ``sink(addresses, source)``.  Sources are
hostile: tracker errors and garbage are logged on one line and retried later
with back-off; nothing a tracker says can stop the other sources.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from servent.codec.tracker import AnnounceRequest, AnnounceResponse, ScrapeEntry
from servent.errors import ServentError
from servent.net.dht_driver import DhtDriver
from servent.net.known_peers import Address
from servent.net.lsd import LsdDriver
from servent.net.tracker_client import TrackerClient
from servent.proto.tracker_tiers import TrackerTiers

__all__ = ["DiscoveryConfig", "Progress", "TorrentDiscovery"]

log = logging.getLogger(__name__)

PeerSink = Callable[[Sequence[Address], str], None]


@dataclass(frozen=True, slots=True)
class Progress:
    """What a tracker announce reports about the transfer."""

    uploaded: int = 0
    downloaded: int = 0
    left: int = 0


@dataclass(frozen=True, slots=True)
class DiscoveryConfig:
    """Schedules of the peer sources; defaults suit the public network."""

    #: DHT lookups+announces this often while the torrent runs.
    dht_interval: float = 600.0
    #: ... and at most this often when peers run short.
    dht_retry: float = 60.0
    #: After a lookup found nobody, the next comes this soon (then doubling up to dht_retry).
    dht_first_retry: float = 5.0
    #: LSD announces this often (BEP 14 asks for no more than once a minute).
    lsd_interval: float = 300.0
    #: An announce answering a neighbour heard for the first time, at most this often.
    lsd_reply_interval: float = 60.0
    #: Trackers are never asked more often than this, whatever they say.
    tracker_min_interval: float = 30.0
    #: An early re-announce to a tracker when peers run short (after its min interval).
    tracker_retry: float = 300.0
    tracker_timeout: float = 30.0
    numwant: int = 50
    #: How often "peers run short" is checked.
    poll_interval: float = 2.0


class TorrentDiscovery:
    """The peer sources of one torrent; see the module docstring."""

    def __init__(
        self,
        *,
        info_hashes: Sequence[bytes],
        peer_id: bytes,
        port: int,
        sink: PeerSink,
        trackers: Sequence[Sequence[str]] = (),
        tracker_client: TrackerClient | None = None,
        dht: DhtDriver | None = None,
        dht_announce: bool = True,
        lsd: LsdDriver | None = None,
        progress: Callable[[], Progress] = Progress,
        wants_peers: Callable[[], bool] = lambda: True,
        config: DiscoveryConfig | None = None,
        rng: random.Random | None = None,
        name: str = "",
    ) -> None:
        if not info_hashes:
            raise ValueError("need an info-hash")
        #: 20-byte hashes: the wire hash first (trackers, LSD), then the v2 truncation.
        self.info_hashes = tuple(dict.fromkeys(h[:20] for h in info_hashes))
        self.peer_id = peer_id
        self.port = port
        self.sink = sink
        self.tracker_client = tracker_client
        self.dht = dht
        self.dht_announce = dht_announce
        self.lsd = lsd
        self.progress = progress
        self.wants_peers = wants_peers
        self.config = config or DiscoveryConfig()
        self.name = name or self.info_hashes[0].hex()
        self.tiers = TrackerTiers(
            trackers if tracker_client is not None else (),
            rng=rng or random.Random(),
            min_interval=self.config.tracker_min_interval,
        )
        self.loop = asyncio.get_running_loop()
        self._completed = asyncio.Event()
        self._completed_sent = False
        self._last_ok = False  # the last announce got an answer
        self._last_good: str | None = None
        self._tracker_min_interval = self.config.tracker_min_interval
        self._last_announce = float("-inf")
        self._lsd_heard: set[Address] = set()
        self._lsd_newcomer = asyncio.Event()
        self._key = (rng or random.Random()).getrandbits(31)
        #: Counters for tests and status pages.
        self.found: dict[str, int] = {}
        self.tracker_errors = 0
        self.dht_rounds = 0
        self.lsd_announces = 0

    # ------------------------------------------------------------------ API

    async def run(self) -> None:
        """Run every source until cancelled."""
        async with asyncio.TaskGroup() as tasks:
            if self.tiers.current() is not None:
                tasks.create_task(self._tracker_loop(), name=f"trackers {self.name}")
            if self.dht is not None:
                tasks.create_task(self._dht_loop(), name=f"dht {self.name}")
            if self.lsd is not None:
                tasks.create_task(self._lsd_loop(), name=f"lsd {self.name}")

    @property
    def has_sources(self) -> bool:
        """Whether any tracker, the DHT or LSD may still bring peers."""
        return self.tiers.current() is not None or self.dht is not None or self.lsd is not None

    def completed(self) -> None:
        """The download finished: tell the trackers (``completed``) at once."""
        self._completed.set()

    async def announce_stopped(self, within: float = 5.0) -> None:
        """Send ``stopped`` to the tracker that last answered (best effort, bounded)."""
        url = self._last_good
        if url is None or self.tracker_client is None:
            return
        with contextlib.suppress(ServentError, TimeoutError, OSError):
            async with asyncio.timeout(within):
                await self.tracker_client.announce(url, self._request("stopped"))

    async def scrape(self) -> dict[str, ScrapeEntry]:
        """Swarm counts from every tracker that supports scrape (errors skipped)."""
        result: dict[str, ScrapeEntry] = {}
        if self.tracker_client is None:
            return result
        for tier in self.tiers.tiers:
            for url in tier:
                try:
                    async with asyncio.timeout(self.config.tracker_timeout):
                        entries = await self.tracker_client.scrape(url, [self.info_hashes[0]])
                except (ServentError, TimeoutError, OSError) as exc:
                    log.info("scrape of %s failed: %s", url, exc)
                    continue
                entry = entries.get(self.info_hashes[0])
                if entry is not None:
                    result[url] = entry
        return result

    def deliver(self, peers: Sequence[Address], source: str) -> None:
        """Hand peers to the sink (also used by the engine's LSD dispatcher)."""
        peers = [p for p in peers if p[1] != 0]
        if not peers:
            return
        self.found[source] = self.found.get(source, 0) + len(peers)
        self.sink(peers, source)

    # ------------------------------------------------------------------ trackers

    def _request(self, event: str) -> AnnounceRequest:
        progress = self.progress()
        return AnnounceRequest(
            info_hash=self.info_hashes[0],
            peer_id=self.peer_id,
            port=self.port,
            uploaded=progress.uploaded,
            downloaded=progress.downloaded,
            left=progress.left,
            event=event,
            numwant=self.config.numwant,
            key=self._key,
        )

    async def _tracker_loop(self) -> None:
        event = "started"
        while True:
            await self._wait_tracker_due()
            if self._completed.is_set() and not self._completed_sent and event != "started":
                event = "completed"
            url = self.tiers.current()
            if url is None:
                return
            now = self.loop.time()
            self._last_announce = now
            try:
                async with asyncio.timeout(self.config.tracker_timeout):
                    assert self.tracker_client is not None
                    response = await self.tracker_client.announce(url, self._request(event))
            except (ServentError, TimeoutError, OSError) as exc:
                self.tracker_errors += 1
                self._last_ok = False
                reason = _short(exc)
                if isinstance(exc, TimeoutError) and not str(exc):
                    reason = f"no valid answer within {self.config.tracker_timeout:g} s"
                log.warning("tracker %s: announce failed: %s", url, reason)
                self.tiers.failed(url, self.loop.time())
                continue
            self._last_ok = True
            self._accept(url, response, event)
            if event == "completed":
                self._completed_sent = True
            event = ""

    def _accept(self, url: str, response: AnnounceResponse, event: str) -> None:
        now = self.loop.time()
        self._last_good = url
        self._tracker_min_interval = max(
            float(response.min_interval or 0), self.config.tracker_min_interval
        )
        self.tiers.succeeded(url, now, float(response.interval), response.min_interval)
        if response.warning:
            log.info("tracker %s warns: %s", url, response.warning[:200])
        log.debug(
            "tracker %s (%s): %d peer(s), next in %d s", url, event or "regular",
            len(response.peers), response.interval,
        )  # fmt: skip
        peers = response.peers
        cap = self.config.numwant * 4
        if len(peers) > cap:
            log.warning(
                "tracker %s sent %d peers for %d asked; keeping the first %d",
                url, len(peers), self.config.numwant, cap,
            )  # fmt: skip
            peers = peers[:cap]
        self.deliver(peers, "tracker")

    async def _wait_tracker_due(self) -> None:
        """Until the tiers say so, or ``completed`` is pending, or peers run short."""
        while True:
            now = self.loop.time()
            if self.tiers.due(now):
                return
            if self._completed.is_set() and not self._completed_sent and self._last_ok:
                return  # ``completed`` goes out at once, as every client does (not on failure)
            since = now - self._last_announce
            if (
                since >= self._tracker_min_interval
                and since >= self.config.tracker_retry
                and self.wants_peers()
            ):
                return
            wake = self.tiers.next_timer()
            wait = self.config.poll_interval
            if wake is not None:
                wait = min(wait, max(0.0, wake - now))
            await asyncio.sleep(wait)  # the announce schedule, polled

    # ------------------------------------------------------------------ DHT

    async def _dht_loop(self) -> None:
        dht = self.dht
        assert dht is not None
        last = float("-inf")
        empty_rounds = 0
        while True:
            now = self.loop.time()
            # No peers yet: look again soon (5, 10, 20 ... s), up to dht_retry.
            retry = self.config.dht_retry
            if empty_rounds:
                retry = min(retry, self.config.dht_first_retry * 2 ** (empty_rounds - 1))
            if now - last >= self.config.dht_interval or (
                now - last >= retry and self.wants_peers()
            ):
                last = now
                found = await self._dht_round(dht)
                empty_rounds = 0 if found else min(empty_rounds + 1, 16)
            await asyncio.sleep(self.config.poll_interval)  # a schedule, not synchronisation

    async def _dht_round(self, dht: DhtDriver) -> int:
        """One lookup (and announce) per info-hash; the number of peers found."""
        self.dht_rounds += 1
        found = 0

        def early(batch: tuple[Address, ...]) -> None:
            # Dialled as they arrive: the download starts long before the lookup ends.
            nonlocal found
            found += len(batch)
            self.deliver(batch, "dht")

        for info_hash in self.info_hashes:
            try:
                if self.dht_announce and self.port:
                    await dht.announce(info_hash, self.port, on_peers=early)
                else:
                    await dht.get_peers(info_hash, on_peers=early)
            except (ServentError, RuntimeError, OSError) as exc:
                log.info("DHT lookup of %s failed: %s", info_hash.hex(), _short(exc))
                continue
        return found

    # ------------------------------------------------------------------ LSD

    def heard_on_lsd(self, address: Address) -> None:
        """A neighbour announced this torrent: take it as a peer, and answer a newcomer.

        Our own periodic announce may be minutes away, so a neighbour we have
        not heard before gets an announce back (never more often than
        ``lsd_reply_interval``) and can dial us too.
        """
        self.deliver([address], "lsd")
        if address not in self._lsd_heard:
            if len(self._lsd_heard) >= 1000:
                self._lsd_heard.clear()
            self._lsd_heard.add(address)
            self._lsd_newcomer.set()

    async def _lsd_loop(self) -> None:
        lsd = self.lsd
        assert lsd is not None
        config = self.config
        while True:
            sent_at = self.loop.time()
            if self.port:
                for info_hash in self.info_hashes:
                    if lsd.announce(info_hash, self.port, sent_at):
                        self.lsd_announces += 1
            self._lsd_newcomer.clear()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation
            # that comes as a newcomer does, and this loop (and its torrent's stop) never ends.
            with contextlib.suppress(TimeoutError):  # the periodic schedule
                async with asyncio.timeout(config.lsd_interval):
                    await self._lsd_newcomer.wait()
                # A newcomer: answer, but not sooner than the reply floor after our last.
                floor = min(config.lsd_reply_interval, config.lsd_interval)
                pause = sent_at + floor - self.loop.time()
                if pause > 0:
                    await asyncio.sleep(pause)  # BEP 14's rate limit, not synchronisation


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."
