"""Torrent creation speed: servent vs libtorrent on the same file, in one run.

``python -m bench.create_torrent --size 1GiB [--version hybrid] [--rounds 1]``

Writes one file of pseudo-random bytes, then times libtorrent's
``create_torrent`` + ``set_piece_hashes`` and servent's ``create_torrent``
with the same piece length and kind, in rounds that alternate who goes first,
and prints MiB/s of each and the median, lowest and highest ratio (servent
speed / libtorrent speed; >= 1.0 means servent is at least as fast).  The
file is read once beforehand so both start from a warm page cache
(``--cold`` evicts it before every run instead).  For v2 and hybrid it also
checks both produced the same info-hash.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import libtorrent as lt

from servent.codec.metainfo.build import TorrentVersion, choose_piece_length
from servent.storage.torrent_creator import create_torrent

LT_FLAGS = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}
MIB = 1024 * 1024


def parse_size(text: str) -> int:
    units = {
        "": 1,
        "k": 1024,
        "kib": 1024,
        "m": MIB,
        "mib": MIB,
        "g": 1024 * MIB,
        "gib": 1024 * MIB,
    }
    digits = text.rstrip("kmgibKMGIB")
    return int(digits) * units[text[len(digits) :].lower()]


def write_payload(path: Path, size: int) -> None:
    rng = random.Random(1)
    block = rng.randbytes(MIB)
    with open(path, "wb") as handle:
        written = 0
        while written < size:
            chunk = block[: min(MIB, size - written)]
            handle.write(chunk)
            written += len(chunk)
            block = block[1:] + block[:1]  # cheap variation so pieces differ


def warm(path: Path) -> None:
    with open(path, "rb", buffering=0) as handle:
        while handle.read(16 * MIB):
            pass


def evict(path: Path) -> None:
    """Drop this file's pages from the page cache (only this file: others keep theirs).

    Pages still mapped (libtorrent maps files) cannot be dropped: collect its
    objects first.
    """
    gc.collect()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def time_libtorrent(path: Path, piece_length: int, version: str) -> tuple[float, float, bytes]:
    cpu = time.process_time()
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        storage = lt.file_storage()
        lt.add_files(storage, str(path))
        creator = lt.create_torrent(storage, piece_length, flags=LT_FLAGS[version])
    lt.set_piece_hashes(creator, str(path.parent))
    data = lt.bencode(creator.generate())
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    hashes = lt.torrent_info(data).info_hashes()
    key = str(hashes.v2) if version != "v1" else str(hashes.v1)
    return elapsed, cpu, bytes.fromhex(key)


def time_servent(path: Path, piece_length: int, version: str) -> tuple[float, float, bytes]:
    cpu = time.process_time()
    started = time.perf_counter()
    meta = create_torrent(path, version=TorrentVersion(version), piece_length=piece_length)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    key = meta.info_hash_v2 if version != "v1" else meta.info_hash_v1
    assert key is not None
    return elapsed, cpu, key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1GiB", help="payload size, e.g. 256MiB, 1GiB")
    parser.add_argument("--version", choices=sorted(LT_FLAGS), default="hybrid")
    parser.add_argument("--piece-length", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where to write the payload (default: tmp)")
    parser.add_argument(
        "--cold", action="store_true", help="evict the payload from the page cache before each run"
    )
    args = parser.parse_args()
    size = parse_size(args.size)
    piece_length = args.piece_length or choose_piece_length(size)
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        path = Path(folder) / "payload.bin"
        write_payload(path, size)
        warm(path)
        print(
            f"payload {size / MIB:.0f} MiB, {args.version}, piece length "
            f"{piece_length // 1024} KiB, {os.cpu_count()} cores, "
            f"{'cold' if args.cold else 'warm'} page cache"
        )

        def servent_run() -> tuple[float, float, bytes]:
            if args.cold:
                evict(path)
            return time_servent(path, piece_length, args.version)

        def libtorrent_run() -> tuple[float, float, bytes]:
            if args.cold:
                evict(path)
            return time_libtorrent(path, piece_length, args.version)

        ratios: list[float] = []
        cpu_ratios: list[float] = []
        for round_index in range(args.rounds):
            # Alternate who goes first so a burst of load elsewhere hits both alike.
            if round_index % 2:
                sv_time, sv_cpu, sv_key = servent_run()
                lt_time, lt_cpu, lt_key = libtorrent_run()
            else:
                lt_time, lt_cpu, lt_key = libtorrent_run()
                sv_time, sv_cpu, sv_key = servent_run()
            ratios.append(lt_time / sv_time)
            cpu_ratios.append(lt_cpu / sv_cpu)
            same = "same info-hash" if lt_key == sv_key else "DIFFERENT info-hash"
            print(
                f"round {round_index + 1}: libtorrent {size / MIB / lt_time:6.0f} MiB/s "
                f"({lt_time:.2f} s, {lt_cpu:.2f} s CPU)   servent {size / MIB / sv_time:6.0f} "
                f"MiB/s ({sv_time:.2f} s, {sv_cpu:.2f} s CPU)   ratio {ratios[-1]:.2f}   "
                f"{same}   load {os.getloadavg()[0]:.1f}"
            )
        print(
            f"ratio servent/libtorrent speed: median {statistics.median(ratios):.2f}x, "
            f"min {min(ratios):.2f}x, max {max(ratios):.2f}x over {args.rounds} rounds"
        )
        print(
            f"ratio of CPU time per byte (libtorrent/servent): median "
            f"{statistics.median(cpu_ratios):.2f}"
        )
        print("(CPU = process time of all threads; libtorrent hashes on one thread,")
        print(" servent on one thread per core: on a busy machine the wall-clock ratio")
        print(" follows the CPU share it gets, on an idle one it approaches the core count)")


if __name__ == "__main__":
    main()
