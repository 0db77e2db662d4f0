"""Benchmark: what the sealed wire of a network torrent costs a transfer.

Run: ``.venv/bin/python -m bench.networks [--size-mib 64] [--runs 2]``.
One seeder and one leecher engine in this process on 127.0.0.1, the payload
on tmpfs when there is one.  Three ways of one transfer, best of ``runs``:

* ``public plain``: a public torrent, encryption off (the reference);
* ``MSE-RC4``: encryption required, RC4 on every byte: what a network
  torrent cost before decision 0044 (the swarm key as SKEY costs the same);
* ``sealed``: a network torrent over the sealed wire (ChaCha20-Poly1305).

Prints MiB/s and the ratio to ``public plain``.  A shared machine is noisy:
compare ratios of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.encryption import scratch_base
from servent.codec.metainfo import Metainfo, parse_torrent
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.sealed_stream import sealed_outcomes
from servent.proto.network.sealed import WireIdentity
from servent.storage.torrent_creator import create_torrent

SWARM_KEY = bytes(range(20))


class BenchNetwork:
    """Both engines are members of one network that holds the one torrent."""

    def __init__(self, info_hash: bytes, members: set[bytes]) -> None:
        private = Ed25519PrivateKey.generate()
        self._identity = WireIdentity(private.public_key().public_bytes_raw(), private.sign)
        members.add(self._identity.public_key)
        self._members = members
        self._info_hash = info_hash[:20]

    @property
    def wire_identity(self) -> WireIdentity:
        return self._identity

    def swarm_key(self, info_hash: bytes) -> bytes | None:
        return SWARM_KEY if info_hash[:20] == self._info_hash else None

    def held_swarm_keys(self) -> list[tuple[bytes, bytes]]:
        return [(self._info_hash, SWARM_KEY)]

    def admits(self, info_hash: bytes, node_key: bytes) -> bool:
        return node_key in self._members


async def one_transfer(root: Path, meta: Metainfo, way: str) -> tuple[float, float]:
    """Wall-clock and CPU seconds (this process: both engines) of one transfer."""
    out = root / "out"
    encryption = {"public plain": "off", "MSE-RC4": "required", "sealed": "off"}[way]
    config = EngineConfig(listen_host="127.0.0.1", encryption=encryption)
    members: set[bytes] = set()
    async with SwarmEngine(config) as seeder, SwarmEngine(config) as leecher:
        if way == "sealed":
            for engine in (seeder, leecher):
                network = BenchNetwork(meta.info_hash_v1 or b"", members)
                engine.dialer.network = network
                assert engine.listener is not None
                engine.listener.network = network
        await seeder.add_torrent(meta, root / "seed")
        start, cpu = time.perf_counter(), time.process_time()
        session = await leecher.add_torrent(meta, out, peers=[("127.0.0.1", seeder.port)])
        await asyncio.wait_for(session.wait_complete(), 600)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    shutil.rmtree(out)
    return elapsed, cpu


async def main(size_mib: int, runs: int) -> None:
    ways = ("public plain", "MSE-RC4", "sealed")
    with tempfile.TemporaryDirectory(dir=scratch_base()) as tmp:
        root = Path(tmp)
        payload = root / "seed" / "payload.bin"
        payload.parent.mkdir()
        with payload.open("wb") as f:
            for _ in range(size_mib):
                f.write(bytes(range(256)) * 4096)
        meta = parse_torrent(create_torrent(payload).to_bytes())
        print(f"{size_mib} MiB servent -> servent on 127.0.0.1, payload in {root}")
        best: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for _ in range(runs):
            for way in ways:
                elapsed, used = await one_transfer(root, meta, way)
                best[way] = min(best.get(way, elapsed), elapsed)
                cpu[way] = min(cpu.get(way, used), used)
        for way in ways:
            ratio = best["public plain"] / best[way]
            per_mib = 1000 * cpu[way] / size_mib
            print(
                f"  {way:13s} {size_mib / best[way]:8.1f} MiB/s  ratio to public {ratio:5.2f}"
                f"  CPU {per_mib:5.1f} ms/MiB (both ends)"
            )
        print(f"  sealed handshakes: {dict(sealed_outcomes)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.size_mib, args.runs))
