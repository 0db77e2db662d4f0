"""Storage benchmark: verified piece writes and full rechecks, side by side with libtorrent.

Run: ``.venv/bin/python -m bench.storage [--mib 256] [--piece-kib 256] [--version v1|v2]``.

1. servent ``write_piece`` of every piece (8 in flight, hashing in threads),
   from memory into a fresh sparse file: MiB/s and CPU seconds per GiB;
2. servent full recheck of that data (open without resume data);
3. libtorrent checking the same files (add with ``save_path``), same page cache.
Prints the recheck ratio servent/libtorrent.  Not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import resource
import tempfile
import time
from pathlib import Path

from servent.codec import bencode, merkle
from servent.codec.metainfo import Metainfo, parse_torrent
from servent.storage import MemoryResumeStore, TorrentStorage

NAME = "payload.bin"


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def build_torrent(data: bytes, piece_length: int, version: str) -> bytes:
    info: dict[bytes, object] = {b"name": NAME.encode(), b"piece length": piece_length}
    top: dict[bytes, object] = {}
    if version == "v1":
        info[b"length"] = len(data)
        info[b"pieces"] = b"".join(
            hashlib.sha1(data[i : i + piece_length]).digest()
            for i in range(0, len(data), piece_length)
        )
    else:
        leaves = merkle.block_hashes(data)
        root = merkle.file_root_from_blocks(leaves)
        info[b"meta version"] = 2
        info[b"file tree"] = {NAME.encode(): {b"": {b"length": len(data), b"pieces root": root}}}
        top[b"piece layers"] = {root: b"".join(merkle.piece_layer(leaves, piece_length))}
    top[b"info"] = info
    return bencode.encode(top)  # type: ignore[arg-type]


async def servent_write(meta: Metainfo, data: bytes, folder: Path) -> tuple[float, float]:
    storage = TorrentStorage(meta, folder, resume_store=MemoryResumeStore())
    await storage.open()
    queue = iter(range(meta.num_pieces))
    view = memoryview(data)

    async def writer() -> None:
        for index in queue:
            start = index * meta.piece_length
            chunk = view[start : start + meta.piece_size(index)]
            if not await storage.write_piece(index, chunk):
                raise RuntimeError(f"piece {index} failed verification")

    cpu0, t0 = cpu_seconds(), time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(8):
            group.create_task(writer())
    await storage.flush()
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    assert storage.is_seed()
    await storage.close()
    return elapsed, cpu


async def servent_recheck(meta: Metainfo, folder: Path) -> tuple[float, float]:
    storage = TorrentStorage(meta, folder, resume_store=MemoryResumeStore())
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    await storage.open()  # no resume data: every piece is verified from disk
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    assert storage.is_seed(), "recheck did not find every piece"
    await storage.close()
    return elapsed, cpu


def libtorrent_recheck(torrent: bytes, folder: Path, deadline_s: float = 600.0) -> float:
    import libtorrent as lt

    settings = {
        "listen_interfaces": "127.0.0.1:0",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        "listen_system_port_fallback": False,
        "hashing_threads": os.cpu_count() or 2,
    }
    session = lt.session(settings)
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(lt.bdecode(torrent))
    params.save_path = str(folder)
    t0 = time.perf_counter()
    handle = session.add_torrent(params)
    end = t0 + deadline_s
    while time.perf_counter() < end:
        status = handle.status()
        if status.state == lt.torrent_status.seeding:
            return time.perf_counter() - t0
        session.wait_for_alert(50)
        session.pop_alerts()
    raise RuntimeError(f"libtorrent did not finish checking: {handle.status().state}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--piece-kib", type=int, default=256)
    parser.add_argument("--version", choices=["v1", "v2"], default="v1")
    args = parser.parse_args()
    size = args.mib * 1024 * 1024
    data = os.urandom(size)
    torrent = build_torrent(data, args.piece_kib * 1024, args.version)
    meta = parse_torrent(torrent)
    gib = size / (1 << 30)
    with tempfile.TemporaryDirectory(prefix="servent-bench-") as temp:
        folder = Path(temp)
        w_time, w_cpu = await servent_write(meta, data, folder)
        r_time, r_cpu = await servent_recheck(meta, folder)
        lt_time = libtorrent_recheck(torrent, folder)
    print(
        f"payload {args.mib} MiB, {meta.num_pieces} pieces of {args.piece_kib} KiB, "
        f"{args.version}, {os.cpu_count()} cores"
    )
    print(
        f"servent write_piece (verify+write): {args.mib / w_time:8.1f} MiB/s, "
        f"{w_cpu / gib:5.2f} CPU s/GiB"
    )
    print(
        f"servent recheck:                    {args.mib / r_time:8.1f} MiB/s, "
        f"{r_cpu / gib:5.2f} CPU s/GiB"
    )
    print(f"libtorrent recheck:                 {args.mib / lt_time:8.1f} MiB/s")
    print(f"recheck ratio servent/libtorrent:   {lt_time / r_time:8.2f}")


if __name__ == "__main__":
    asyncio.run(main())
