"""uTP benchmark: servent and libtorrent over uTP on loopback, side by side, one run.

Run: ``.venv/bin/python -m bench.utp [--size-mib 64] [--runs 1] [--dir /dev/shm]
[--scenarios lt->lt sv->lt lt->sv sv->sv]``.

libtorrent's TCP is off in every libtorrent process (``enable_*_tcp=False``), so
it can only speak uTP; the servent leecher dials uTP first (``prefer-utp``) and
the run fails if any servent download used TCP. Each side is its own process
(``python -m bench.utp _child ...``); the rate is payload bytes / seconds from
the leecher's dial to its last piece verified. The reference is
``lt->lt`` (libtorrent uTP seeder -> libtorrent uTP leecher); the ratios printed
are each scenario's rate over it. Not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.transfer import (
    LOOPBACK,
    MIB,
    cpu_seconds,
    emit,
    lt_add,
    lt_settings,
    lt_wait,
    make_payload,
    serve_commands,
)

SCENARIOS = ("lt->lt", "sv->lt", "lt->sv", "sv->sv")


def lt_utp_settings() -> dict[str, Any]:
    settings = lt_settings()
    settings.update(
        enable_outgoing_utp=True,
        enable_incoming_utp=True,
        enable_outgoing_tcp=False,
        enable_incoming_tcp=False,
    )
    return settings


def child_lt_seed(torrent: Path, data: Path, timeout: float) -> None:
    import libtorrent as lt

    session = lt.session(lt_utp_settings())
    handle = lt_add(session, torrent, data)
    lt_wait(session, handle, lt.torrent_status.seeding, time.monotonic() + timeout)
    emit({"port": session.listen_port(), "pid": os.getpid()})
    serve_commands(cpu_seconds())


def child_lt_leech(torrent: Path, out: Path, port: int, timeout: float) -> None:
    import libtorrent as lt

    session = lt.session(lt_utp_settings())
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    handle = lt_add(session, torrent, out)
    handle.connect_peer((LOOPBACK, port), 0, 0)
    lt_wait(session, handle, lt.torrent_status.seeding, time.monotonic() + timeout)
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    emit({"seconds": elapsed, "cpu": cpu, "bytes": handle.status().total_wanted_done})


def _sv_config() -> Any:
    from servent.net.engine import EngineConfig

    return EngineConfig(listen_host=LOOPBACK, utp=True, utp_preference="prefer-utp")


async def child_sv_seed(torrent: bytes, data: Path) -> None:
    from servent.codec.metainfo import parse_torrent
    from servent.net.engine import SwarmEngine
    from servent.storage import MemoryResumeStore, TorrentStorage

    meta = parse_torrent(torrent)
    async with SwarmEngine(_sv_config()) as engine:
        storage = TorrentStorage(meta, data, resume_store=MemoryResumeStore())
        session = await engine.add_torrent(meta, storage=storage)
        if not session.complete:
            raise RuntimeError("the seeder's payload does not verify")
        emit({"port": engine.port, "pid": os.getpid()})
        await asyncio.get_running_loop().run_in_executor(None, serve_commands, cpu_seconds())


async def child_sv_leech(torrent: bytes, out: Path, port: int, within: float) -> None:
    from servent.codec.metainfo import parse_torrent
    from servent.net.engine import SwarmEngine
    from servent.storage import MemoryResumeStore, TorrentStorage

    meta = parse_torrent(torrent)
    async with SwarmEngine(_sv_config()) as engine:
        storage = TorrentStorage(meta, out, resume_store=MemoryResumeStore())
        await storage.open()
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        session = await engine.add_torrent(meta, storage=storage, peers=[(LOOPBACK, port)])
        await asyncio.wait_for(session.wait_complete(), within)
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        if engine.dialer.outcomes["tcp"]:
            raise RuntimeError(f"a servent download used TCP: {engine.dialer.outcomes}")
        emit({"seconds": elapsed, "cpu": cpu, "bytes": session.have_bytes})


def child_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench.utp _child")
    parser.add_argument("role", choices=["lt-seed", "lt-leech", "sv-seed", "sv-leech"])
    parser.add_argument("torrent", type=Path)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600.0)
    args = parser.parse_args(argv)
    if args.role == "lt-seed":
        child_lt_seed(args.torrent, args.folder, args.timeout)
    elif args.role == "lt-leech":
        child_lt_leech(args.torrent, args.folder, args.port, args.timeout)
    elif args.role == "sv-seed":
        asyncio.run(child_sv_seed(args.torrent.read_bytes(), args.folder))
    else:
        asyncio.run(child_sv_leech(args.torrent.read_bytes(), args.folder, args.port, args.timeout))


def _command(role: str, torrent: Path, folder: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bench.utp", "_child", role, str(torrent), str(folder), *extra]


def _read_json(proc: subprocess.Popen[str]) -> dict[str, Any]:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"child exited with {proc.wait()}")
    record: dict[str, Any] = json.loads(line)
    return record


def _transfer(scenario: str, ports: dict[str, int], torrent: Path, work: Path,
              timeout: float) -> dict[str, Any]:  # fmt: skip
    seed_side, leech_side = scenario.split("->")
    out = work / f"leech-{seed_side}-{leech_side}"
    out.mkdir()
    command = _command(f"{leech_side}-leech", torrent, out, "--port", str(ports[seed_side]),
                       "--timeout", str(timeout))  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout + 60)
    shutil.rmtree(out)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{scenario} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    result["mib_s"] = result["bytes"] / MIB / result["seconds"]
    return result


def parent_main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="servent-utp-", dir=args.dir))
    seeders: dict[str, subprocess.Popen[str]] = {}
    try:
        torrent = make_payload(work, args.size_mib << 20, args.piece_kib * 1024, "v1")
        print(f"payload {args.size_mib} MiB over uTP on loopback, {os.cpu_count()} cores")
        ports: dict[str, int] = {}
        for side in ("lt", "sv"):
            seeders[side] = subprocess.Popen(
                _command(f"{side}-seed", torrent, work / "seed", "--timeout", str(args.timeout)),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            )  # fmt: skip
            ports[side] = int(_read_json(seeders[side])["port"])
        rates: dict[str, list[float]] = {s: [] for s in args.scenarios}
        for run in range(args.runs):
            for scenario in args.scenarios:
                result = _transfer(scenario, ports, torrent, work, args.timeout)
                rates[scenario].append(result["mib_s"])
                print(f"run {run + 1} {scenario}: {result['mib_s']:6.1f} MiB/s "
                      f"({result['seconds']:.2f} s, leecher CPU {result['cpu']:.1f} s)",
                      flush=True)  # fmt: skip
        medians = {s: statistics.median(r) for s, r in rates.items()}
        reference = medians.get("lt->lt")
        print("\nmedian MiB/s and ratio to libtorrent uTP->uTP (lt->lt):")
        for scenario, rate in medians.items():
            ratio = f"{rate / reference:.2f}" if reference else "-"
            print(f"  {scenario}: {rate:6.1f} MiB/s  ratio {ratio}")
    finally:
        for proc in seeders.values():
            if proc.poll() is None:
                assert proc.stdin is not None
                try:
                    proc.stdin.write("quit\n")
                    proc.stdin.close()
                    proc.wait(timeout=30)
                except (OSError, subprocess.TimeoutExpired):
                    proc.kill()
                    proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child_main(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(prog="bench.utp", description=__doc__)
    parser.add_argument("--size-mib", type=int, default=64)
    parser.add_argument("--piece-kib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parent_main(parser.parse_args())


if __name__ == "__main__":
    main()
