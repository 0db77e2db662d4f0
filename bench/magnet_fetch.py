"""Benchmark: time from a magnet link to verified metadata, servent and libtorrent.

Run: ``.venv/bin/python -m bench.magnet_fetch [--files 2000] [--runs 15]``.
A torrent of many small files (so the info dictionary spans several 16 KiB
``ut_metadata`` pieces) is seeded by servent and by libtorrent on 127.0.0.1;
servent and libtorrent each fetch its metadata from each seeder, given the
seeder's address (``x.pe``), ``--runs`` times.  Printed: the median and the
best milliseconds from "start fetching" to "metadata verified", and each
servent figure's ratio to libtorrent's against the same seeder.  The
fetcher's session or engine is already running when the clock starts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import libtorrent as lt

from servent.codec.magnet import Magnet
from servent.codec.metainfo import Metainfo
from servent.net.engine import EngineConfig, SwarmEngine
from servent.storage.torrent_creator import create_torrent

LOOPBACK = "127.0.0.1"


def lt_session() -> Any:
    return lt.session(
        {
            "listen_interfaces": f"{LOOPBACK}:0",
            "outgoing_interfaces": LOOPBACK,
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "dht_bootstrap_nodes": "",
            "listen_system_port_fallback": False,
            "enable_outgoing_utp": False,
            "enable_incoming_utp": False,
            "out_enc_policy": 2,
            "allow_multiple_connections_per_ip": True,
            "alert_mask": 0,
        }
    )


def lt_seed(session: Any, meta: Metainfo, folder: Path) -> Any:
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bdecode(meta.to_bytes()))
    params.save_path = str(folder)
    params.flags |= lt.torrent_flags.seed_mode
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    return session.add_torrent(params)


async def servent_fetch(engine: SwarmEngine, magnet: Magnet) -> float:
    start = time.perf_counter()
    await engine.fetch_metadata(magnet, timeout=60)
    return time.perf_counter() - start


async def libtorrent_fetch(session: Any, magnet: Magnet, out: Path) -> float:
    params = lt.parse_magnet_uri(magnet.to_uri())
    params.save_path = str(out)
    params.flags |= lt.torrent_flags.upload_mode  # metadata only: no payload writes
    start = time.perf_counter()
    handle = session.add_torrent(params)
    deadline = start + 60
    while not handle.status().has_metadata:
        if time.perf_counter() > deadline:
            raise TimeoutError("libtorrent got no metadata in 60 s")
        await asyncio.sleep(0.001)  # libtorrent offers nothing to await: poll finely
    elapsed = time.perf_counter() - start
    session.remove_torrent(handle)
    return elapsed


async def main(files: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "seed" / "many"
        folder.mkdir(parents=True)
        for number in range(files):
            (folder / f"file-{number:05d}-of-a-collection.bin").write_bytes(os.urandom(64))
        meta = create_torrent(folder)
        print(
            f"{files} files, info dictionary {len(meta.info_bytes) / 1024:.1f} KiB "
            f"({-(-len(meta.info_bytes) // 16384)} ut_metadata pieces), {runs} runs each"
        )
        config = EngineConfig(listen_host=LOOPBACK, trackers=False)
        seeder_lt = lt_session()
        lt_seed(seeder_lt, meta, root / "seed")
        fetcher_lt = lt_session()
        async with SwarmEngine(config) as seeder, SwarmEngine(config) as fetcher:
            await seeder.add_torrent(meta, root / "seed")
            seeders = {
                "servent": (LOOPBACK, seeder.port),
                "libtorrent": (LOOPBACK, int(seeder_lt.listen_port())),
            }
            results: dict[tuple[str, str], list[float]] = {}
            for seeder_name, address in seeders.items():
                magnet = Magnet(meta.info_hash_v1, meta.info_hash_v2, peers=(address,))
                # One fetcher's runs, then the other's: interleaved, a libtorrent fetch
                # going on in the background skews the next fetch from the same seeder.
                ours = results.setdefault(("servent", seeder_name), [])
                for _ in range(runs):
                    ours.append(await servent_fetch(fetcher, magnet))
                theirs = results.setdefault(("libtorrent", seeder_name), [])
                for _ in range(runs):
                    theirs.append(await libtorrent_fetch(fetcher_lt, magnet, root / "lt-out"))
        del seeder_lt, fetcher_lt
        for seeder_name in seeders:
            ours = statistics.median(results[("servent", seeder_name)])
            theirs = statistics.median(results[("libtorrent", seeder_name)])
            for fetcher_name in ("servent", "libtorrent"):
                times = results[(fetcher_name, seeder_name)]
                print(
                    f"{fetcher_name:>10} <- {seeder_name:<10} median "
                    f"{statistics.median(times) * 1000:7.1f} ms, best {min(times) * 1000:7.1f} ms"
                )
            print(f"{'ratio':>10}    {seeder_name:<10} servent/libtorrent {ours / theirs:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=15)
    options = parser.parse_args()
    asyncio.run(main(options.files, options.runs))
