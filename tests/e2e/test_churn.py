"""A download that survives churn: seeders die and come back on new ports.

Six ``servent seed`` processes announce to servent's built-in tracker (or,
in the second variant, to a loopback DHT).  A rate-limited download runs in
this process with a target of four connections; meanwhile, every second,
one seeder is killed (SIGKILL, no ``stopped``) and replaced by a new process
on a new port, which the download can only learn about through the
tracker's re-announces (or its repeated DHT lookups).  It must complete,
byte-identical, and keep close to its connection target.

The download is paced to the churn, not to the clock: a new ``servent seed``
process needs over a second of CPU to start, which a loaded machine stretches
to ten or more, so at a fixed rate the download could end before any seeder
had moved.  It runs at a quarter of its rate until two seeders were restarted
and it connected to one on its new port, then at full rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import statistics
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from servent_cli import ServentProcess, start_servent

from interop.reference_clients import write_payload
from servent.net.dht_driver import DhtDriver
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.swarm_peer import SwarmPeer
from servent.net.torrent_discovery import DiscoveryConfig
from servent.net.torrent_session import TorrentConfig, TorrentSession
from servent.net.tracker_server import TrackerServer
from servent.proto.dht import DhtConfig
from servent.proto.tracker_state import TrackerConfig
from servent.storage.torrent_creator import create_torrent

pytestmark = pytest.mark.e2e

LOOPBACK = "127.0.0.1"
SEEDERS = 6
TARGET = 4
SIZE = 12 * 1024 * 1024
RATE = 768 * 1024  # bytes/s once the churn was seen: sixteen seconds for the whole payload
HELD_RATE = RATE // 4  # until then: the whole payload would take 64 s
#: A held download completes well within it too (64 s at the held rate, with room for a loaded
#: machine where each seeder restart takes ten seconds), so lost re-discovery fails on the asserts.
DEADLINE = 150.0
QUICK = DiscoveryConfig(
    tracker_min_interval=1.0, tracker_retry=1.0, poll_interval=0.2,
    dht_interval=2.0, dht_retry=1.0, dht_first_retry=0.5,
)  # fmt: skip
RELAXED = DhtConfig(restrict_ips=False, rate_limit_per_ip=0.0, query_timeout=1.0)


async def start_seeder(
    share: Path, number: int, torrent: Path, source: list[str]
) -> tuple[ServentProcess, int]:
    """A ``servent seed`` process and the port it listens on."""
    folder = share / f"seed{number}"
    folder.mkdir(exist_ok=True)
    if not (folder / "movie.bin").exists():
        os.link(share / "movie.bin", folder / "movie.bin")  # one copy on disk, own resume data
    seeder = await start_servent(
        "seed", folder / "movie.bin", "--torrent", torrent, "--host", LOOPBACK, *source
    )
    try:
        match = await seeder.wait_line(r"^listening on 127\.0\.0\.1:(\d+)$")
    except AssertionError:
        await seeder.stop()
        raise AssertionError(f"seeder {number} did not start: {seeder.stderr[-5:]}") from None
    except BaseException:  # cancelled by the end of the download: no orphan process
        await asyncio.shield(seeder.stop())
        raise
    return seeder, int(match.group(1))


class Progress:
    """The download's course, one line per second, for the message of a download that missed
    its deadline (which part stalled: bytes, connections, restarts or discovery)."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.lines: list[str] = []

    def sample(
        self, now: float, session: TorrentSession, restarts: int, found: dict[str, int]
    ) -> None:
        elapsed = now - self.start
        if len(self.lines) > elapsed:
            return
        ports = sorted(listening_port(peer) for peer in session.open_peers)
        self.lines.append(
            f"{elapsed:5.1f} s: {session.statistics().have_bytes // 1024:6d} KiB, "
            f"peers {ports}, {restarts} restarts, found {dict(found)}"
        )

    def report(self) -> str:
        return "\n".join(self.lines)


def listening_port(peer: SwarmPeer) -> int:
    """The port a connected peer listens on: the one we dialled, or the one its extension
    handshake names (seeders dial the download too, from an ephemeral port)."""
    if peer.dialled is not None:
        return peer.dialled[1]
    extensions = peer.session.conn.remote_extensions
    if extensions is not None and extensions.listen_port:
        return extensions.listen_port
    return peer.session.address[1]


@contextlib.asynccontextmanager
async def peer_source(kind: str) -> AsyncIterator[tuple[list[str], list[str], DhtDriver | None]]:
    """Seeder flags, the download's trackers and its DHT node, for ``kind``."""
    if kind == "tracker":
        config = TrackerConfig(interval=2, min_interval=1)
        async with TrackerServer(LOOPBACK, 0, config=config) as tracker:
            url = f"http://{LOOPBACK}:{tracker.port}/announce"
            yield ["--tracker", url, "--no-dht"], [url], None
        return
    async with (
        DhtDriver(host=LOOPBACK, config=RELAXED, rng=random.Random(5)) as router,
        DhtDriver(host=LOOPBACK, config=RELAXED, rng=random.Random(6)) as dht,
    ):
        bootstrap = "{}:{}".format(*router.address)
        await dht.bootstrap([router.address])
        yield ["--bootstrap", bootstrap, "--no-ip-restrictions", "--no-trackers"], [], dht


@pytest.mark.parametrize("kind", ["tracker", "dht"])
async def test_download_completes_while_seeders_move_to_new_ports(
    tmp_path: Path, kind: str
) -> None:
    share = tmp_path / "share"
    data = write_payload(share / "movie.bin", SIZE, seed=9)
    meta = create_torrent(share / "movie.bin", piece_length=64 * 1024)
    torrent = tmp_path / "movie.torrent"
    torrent.write_bytes(meta.to_bytes())
    seeders: list[ServentProcess] = []
    async with peer_source(kind) as (flags, trackers, dht):
        try:
            started = await asyncio.gather(
                *(start_seeder(share, n, torrent, flags) for n in range(SEEDERS))
            )
            seeders = [process for process, _ in started]
            ports = [port for _, port in started]
            config = EngineConfig(listen_host=LOOPBACK, download_rate=RATE, discovery=QUICK)
            async with SwarmEngine(config, dht=dht) as engine:
                # Seeders dial the download too (decision 0021); all share 127.0.0.1, so one
                # incoming at most leaves the download's own dials, which re-discovery
                # steers, most of its slots.
                session = await engine.add_torrent(
                    meta, tmp_path / "down", trackers=trackers,
                    config=TorrentConfig(
                        max_connections=TARGET, reconnect_delay=0.5, max_peers_per_ip=1,
                        download_rate=HELD_RATE,
                    ),
                )  # fmt: skip
                samples: list[int] = []
                restarts = 0
                restarted_ports: set[int] = set()
                seen_ports: set[int] = set()

                def next_victim() -> int:
                    """An original seeder we are connected to, so each kill costs a connection."""
                    connected = {listening_port(peer) for peer in session.open_peers}
                    originals = [n for n in range(SEEDERS) if ports[n] not in restarted_ports]
                    busy = [n for n in originals if ports[n] in connected]
                    return (busy or originals or [restarts % SEEDERS])[0]

                async def churn() -> None:
                    nonlocal restarts
                    while True:
                        await asyncio.sleep(1.0)  # the churn schedule
                        victim = next_victim()
                        seeders[victim].kill()  # SIGKILL: no 'stopped' announce
                        await seeders[victim].stop()
                        seeders[victim], ports[victim] = await start_seeder(
                            share, victim, torrent, flags
                        )
                        restarted_ports.add(ports[victim])
                        restarts += 1

                def churn_seen() -> bool:
                    """Seeders moved, and the download found one where it moved to."""
                    return restarts >= 2 and bool(seen_ports & restarted_ports)

                loop = asyncio.get_running_loop()
                progress = Progress(loop.time())
                try:
                    async with asyncio.timeout(DEADLINE), asyncio.TaskGroup() as tasks:
                        churner = tasks.create_task(churn(), name="churn")
                        while not session.complete:
                            samples.append(len(session.open_peers))
                            progress.sample(
                                loop.time(), session, restarts, engine.discoveries[session].found
                            )
                            seen_ports.update(listening_port(p) for p in session.open_peers)
                            if session.download_bucket.rate == HELD_RATE and churn_seen():
                                session.download_bucket.set_rate(RATE, loop.time())
                            # A sampling period while the download runs (not synchronisation);
                            # asyncio.timeout: wait_for may lose the deadline's cancellation.
                            with contextlib.suppress(TimeoutError):
                                async with asyncio.timeout(0.1):
                                    await session.wait_complete()
                        churner.cancel()
                except TimeoutError:
                    raise AssertionError(
                        f"not complete after {DEADLINE:.0f} s ({restarts} restarts, connected "
                        f"to restarted ports: {sorted(seen_ports & restarted_ports)});\n"
                        + progress.report()
                    ) from None
                stats = session.statistics()
                found = engine.discoveries[session].found.get(kind, 0)
        finally:
            for seeder in seeders:
                await seeder.stop()
    assert (tmp_path / "down" / "movie.bin").read_bytes() == data
    assert restarts >= 2, f"only {restarts} seeders restarted before the end"
    sources = [peer for peer, count in stats.downloaded_from.items() if count]
    # Re-discovery shown: the download connected to seeders on ports they only had after
    # a restart (bytes from them usually follow, but a fast finish may not need them).
    assert seen_ports & restarted_ports, (
        f"never connected to a restarted seeder: connected to {sorted(seen_ports)}, "
        f"restarted on {sorted(restarted_ports)}, bytes from {sources}"
    )
    assert found > SEEDERS, f"the {kind} never told us about the restarted seeders"
    connected = samples[next(i for i, n in enumerate(samples) if n) :]
    assert max(connected) <= TARGET
    assert statistics.mean(connected) >= TARGET - 1.5, connected
