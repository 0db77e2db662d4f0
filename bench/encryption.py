"""Benchmark: what each encryption setting costs a servent -> servent transfer.

Run: ``.venv/bin/python -m bench.encryption [--size-mib 128] [--runs 2]``.
One seeder engine and one leecher engine in this process, on 127.0.0.1, the
payload on tmpfs (``/dev/shm``) when available.  For each setting (the same
on both sides) it prints MiB/s from the first dial to the last verified
piece and the ratio to ``off``; ``enabled`` between two servents negotiates
an obfuscated handshake with a plaintext payload, ``required`` is RC4 on
every byte.  Figures on a shared 2-core machine are noisy: compare ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

from servent.codec.metainfo import parse_torrent
from servent.net import encrypted_transport
from servent.net.engine import EngineConfig, SwarmEngine
from servent.storage.torrent_creator import create_torrent

SETTINGS = ("off", "enabled", "required")


async def one_transfer(root: Path, torrent: bytes, setting: str) -> float:
    meta = parse_torrent(torrent)
    out = root / f"out-{setting}"
    config = EngineConfig(listen_host="127.0.0.1", encryption=setting)
    async with SwarmEngine(config) as seeder, SwarmEngine(config) as leecher:
        await seeder.add_torrent(meta, root / "seed")
        start = time.perf_counter()
        session = await leecher.add_torrent(meta, out, peers=[("127.0.0.1", seeder.port)])
        await asyncio.wait_for(session.wait_complete(), 600)
        elapsed = time.perf_counter() - start
    shutil.rmtree(out)
    return elapsed


def scratch_base() -> str | None:
    """tmpfs when there is one, so the disk does not set the pace."""
    return "/dev/shm" if os.path.isdir("/dev/shm") else None


async def main(size_mib: int, runs: int) -> None:
    base = scratch_base()
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        root = Path(tmp)
        payload = root / "seed" / "payload.bin"
        payload.parent.mkdir()
        with payload.open("wb") as f:
            for _ in range(size_mib):
                f.write(os.urandom(1024 * 1024))
        torrent = create_torrent(payload).to_bytes()
        print(f"{size_mib} MiB servent -> servent on 127.0.0.1, payload in {root}")
        best: dict[str, float] = {}
        for _ in range(runs):
            for setting in SETTINGS:
                elapsed = await one_transfer(root, torrent, setting)
                best[setting] = min(best.get(setting, elapsed), elapsed)
        for setting in SETTINGS:
            rate = size_mib / best[setting]
            ratio = best["off"] / best[setting]
            print(f"  {setting:9s} {rate:8.1f} MiB/s  ratio to off {ratio:5.2f}")
        print(f"  handshakes: {dict(encrypted_transport.handshake_outcomes)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=128)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.size_mib, args.runs))
