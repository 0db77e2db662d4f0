"""Transfer benchmark: servent against libtorrent on loopback, side by side, one run.

Run: ``.venv/bin/python -m bench.transfer [--size-mib 1024] [--runs N]
[--piece-kib 1024] [--version v1|hybrid] [--dir /dev/shm]
[--profile pyinstrument|py-spy]``.

Every side is its own process (``python -m bench.transfer _child ...``), so
its CPU time is its own: each child reads ``getrusage(RUSAGE_SELF)`` (every
thread included) before and after the transfer.  Two seeders (servent and
libtorrent) serve the same payload file; for each scenario a fresh leecher
process downloads it into an empty folder:

* ``lt->lt``  libtorrent seeder -> libtorrent leecher (the reference);
* ``sv->sv``  servent seeder -> servent leecher (ratio (a));
* ``lt->sv``  libtorrent seeder -> servent leecher (ratio (b));
* ``sv->lt``  servent seeder -> libtorrent leecher (ratio (d)).

The rate is payload bytes / seconds from the leecher's dial to its last piece
verified and written.  CPU (c) is seconds per GiB for each side.  Payload and
downloads live in one folder (``--dir``, default ``/dev/shm``, a tmpfs, so the
disk is not what is measured; pass a disk folder to include it).  With
``--runs N`` the scenarios rotate order and the median of each is reported.
With ``--profile`` the servent processes of the first ``sv->sv`` and
``lt->sv`` runs are profiled and the top self-time functions are printed
(py-spy's raw stacks are kept in the work folder when ``--keep`` is given).
Not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.profiling import (
    attach_tracer,
    profiled,
    py_spy_attach,
    report_profile,
    stop_tracer,
)
from bench.transfer_args import parent_arguments
from bench.transfer_report import (
    BASELINE_SCENARIO,
    SCENARIOS,
    median,
    print_paired_ratios,
    print_summary,
)

PAYLOAD = "payload.bin"
LOOPBACK = "127.0.0.1"
#: ``--baseline-src``'s leecher: servent imported from another source folder.
BASELINE_LEECHER = "sv*"
GIB = float(1 << 30)
MIB = float(1 << 20)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def system_seconds() -> float:
    """The kernel's share of :func:`cpu_seconds` (socket reads, file writes, page faults)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def emit(record: dict[str, Any]) -> None:
    """One JSON line to the parent."""
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------ payload


def make_payload(folder: Path, size: int, piece_length: int, version: str) -> Path:
    """Write ``size`` random bytes and a torrent for them; returns the .torrent path."""
    from servent.codec import bencode

    data_path = folder / "seed" / PAYLOAD
    data_path.parent.mkdir(parents=True)
    hashes: list[bytes] = []
    with data_path.open("wb") as out:
        left = size
        while left:
            piece = os.urandom(min(piece_length, left))
            out.write(piece)
            hashes.append(hashlib.sha1(piece).digest())
            left -= len(piece)
    if version == "v1":
        info = {
            b"name": PAYLOAD.encode(),
            b"piece length": piece_length,
            b"length": size,
            b"pieces": b"".join(hashes),
        }
        torrent = bencode.encode({b"info": info})  # type: ignore[dict-item]
    else:
        import libtorrent as lt

        files = lt.file_storage()
        lt.add_files(files, str(data_path))
        creator = lt.create_torrent(files, piece_length, 0)
        lt.set_piece_hashes(creator, str(data_path.parent))
        torrent = bytes(lt.bencode(creator.generate()))
    path = folder / "payload.torrent"
    path.write_bytes(torrent)
    return path


# ------------------------------------------------------------------ children


def lt_settings() -> dict[str, Any]:
    """libtorrent on loopback only, TCP only, plain handshakes, default tuning otherwise."""
    return {
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
        "in_enc_policy": 1,
        "allow_multiple_connections_per_ip": True,
        "max_failcount": 100,
        "min_reconnect_time": 1,
    }


def lt_add(session: Any, torrent: Path, save_path: Path) -> Any:
    import libtorrent as lt

    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(str(torrent))
    params.save_path = str(save_path)
    return session.add_torrent(params)


def lt_wait(session: Any, handle: Any, state: Any, deadline: float) -> None:
    while handle.status().state != state:
        if time.monotonic() > deadline:
            raise TimeoutError(f"libtorrent stuck in {handle.status().state}")
        session.wait_for_alert(20)
        session.pop_alerts()


def serve_commands(cpu0: float) -> None:
    """Answer the parent's ``cpu`` lines until ``quit`` (or stdin closes)."""
    for line in sys.stdin:
        if line.strip() == "cpu":
            emit({"cpu": cpu_seconds() - cpu0})
        elif line.strip() == "quit":
            return


def child_lt_seed(torrent: Path, data: Path, timeout: float) -> None:
    import libtorrent as lt

    session = lt.session(lt_settings())
    handle = lt_add(session, torrent, data)
    lt_wait(session, handle, lt.torrent_status.seeding, time.monotonic() + timeout)
    emit({"port": session.listen_port(), "pid": os.getpid()})
    serve_commands(cpu_seconds())


def child_lt_leech(
    torrent: Path,
    out: Path,
    port: int,
    timeout: float,
    perf_to: Path | None = None,
    syscalls_to: Path | None = None,
) -> None:
    import libtorrent as lt

    session = lt.session(lt_settings())
    tracer = attach_tracer(perf_to, syscalls_to)
    cpu0, sys0, t0 = cpu_seconds(), system_seconds(), time.perf_counter()
    handle = lt_add(session, torrent, out)
    handle.connect_peer((LOOPBACK, port), 0, 1)
    lt_wait(session, handle, lt.torrent_status.seeding, time.monotonic() + timeout)
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    stop_tracer(tracer)
    done = handle.status().total_wanted_done
    emit({"seconds": elapsed, "cpu": cpu, "sys": system_seconds() - sys0, "bytes": done})


async def child_sv_seed(torrent: bytes, data: Path) -> None:
    from servent.codec.metainfo import parse_torrent
    from servent.net.engine import EngineConfig, SwarmEngine
    from servent.storage import MemoryResumeStore, TorrentStorage

    meta = parse_torrent(torrent)
    async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
        storage = TorrentStorage(meta, data, resume_store=MemoryResumeStore())
        session = await engine.add_torrent(meta, storage=storage)
        if not session.complete:
            raise RuntimeError("the seeder's payload does not verify")
        emit({"port": engine.port, "pid": os.getpid()})
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, serve_commands, cpu_seconds())


async def child_sv_leech(
    torrent: bytes,
    out: Path,
    port: int,
    within: float,
    perf_to: Path | None = None,
    syscalls_to: Path | None = None,
) -> None:
    from servent.codec.metainfo import parse_torrent
    from servent.net.engine import EngineConfig, SwarmEngine
    from servent.storage import MemoryResumeStore, TorrentStorage

    meta = parse_torrent(torrent)
    async with SwarmEngine(EngineConfig(listen=False)) as engine:
        storage = TorrentStorage(meta, out, resume_store=MemoryResumeStore())
        await storage.open()  # sparse allocation: not part of the transfer
        tracer = attach_tracer(perf_to, syscalls_to)
        cpu0, sys0, t0 = cpu_seconds(), system_seconds(), time.perf_counter()
        loop0 = time.thread_time()  # this thread runs the event loop
        session = await engine.add_torrent(meta, storage=storage, peers=[(LOOPBACK, port)])
        await asyncio.wait_for(session.wait_complete(), within)
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
        loop_cpu = time.thread_time() - loop0
        await asyncio.to_thread(stop_tracer, tracer)
        done = session.have_bytes
        sys_cpu = system_seconds() - sys0
        emit({"seconds": elapsed, "cpu": cpu, "sys": sys_cpu, "loop": loop_cpu, "bytes": done})


def child_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench.transfer _child")
    parser.add_argument("role", choices=["lt-seed", "lt-leech", "sv-seed", "sv-leech"])
    parser.add_argument("torrent", type=Path)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="uvloop")
    parser.add_argument("--perf", type=Path, help="record the transfer with Linux perf here")
    parser.add_argument("--syscalls", type=Path, help="count the transfer's syscalls here")
    args = parser.parse_args(argv)
    if args.loop == "uvloop":
        import uvloop

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if args.role == "lt-seed":
        child_lt_seed(args.torrent, args.folder, args.timeout)
    elif args.role == "lt-leech":
        child_lt_leech(args.torrent, args.folder, args.port, args.timeout, args.perf, args.syscalls)
    elif args.role == "sv-seed":
        asyncio.run(child_sv_seed(args.torrent.read_bytes(), args.folder))
    else:
        torrent = args.torrent.read_bytes()
        leech = child_sv_leech(
            torrent, args.folder, args.port, args.timeout, args.perf, args.syscalls
        )
        asyncio.run(leech)


# ------------------------------------------------------------------ parent


def child_command(role: str, torrent: Path, folder: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "bench.transfer", "_child", role, str(torrent), str(folder), *extra,
    ]  # fmt: skip


class Seeder:
    """A long-lived seeder child; asked for its CPU seconds around each transfer."""

    def __init__(
        self, role: str, torrent: Path, data: Path, timeout: float, loop: str = "asyncio"
    ) -> None:
        self.role = role
        self.proc = subprocess.Popen(
            child_command(role, torrent, data, "--timeout", str(timeout), "--loop", loop),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        ready = self._read()
        self.port = int(ready["port"])
        self.pid = int(ready["pid"])

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.role} exited with {self.proc.wait()}")
        record: dict[str, Any] = json.loads(line)
        return record

    def cpu(self) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write("cpu\n")
        self.proc.stdin.flush()
        return float(self._read()["cpu"])

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()


def run_leecher(
    command: list[str], timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout + 60, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"leecher failed ({proc.returncode}): {proc.stderr[-2000:]}")
    record: dict[str, Any] = json.loads(lines[-1])
    return record


def transfer(
    scenario: str,
    seeders: dict[str, Seeder],
    torrent: Path,
    work: Path,
    args: argparse.Namespace,
    profile_to: Path | None,
) -> dict[str, Any]:
    seed_side, leech_side = scenario.split("->")
    env = None
    loop = args.loop
    if leech_side == BASELINE_LEECHER:  # the same leecher, another copy of the code or loop
        leech_side = "sv"
        env = {**os.environ, "PYTHONPATH": str(args.baseline_src)}
        loop = args.baseline_loop or args.loop
    seeder = seeders[seed_side]
    out = work / f"leech-{scenario.replace('->', '-').replace('*', 'base')}"
    out.mkdir()
    command = child_command(
        f"{leech_side}-leech", torrent, out, "--port", str(seeder.port), "--timeout",
        str(args.timeout), "--loop", loop,
    )  # fmt: skip
    spy: subprocess.Popen[bytes] | None = None
    if profile_to is not None and (leech_side == "sv" or args.profile in {"syscalls", "perf"}):
        command = profiled(command, args.profile, profile_to.with_suffix(".leecher.txt"))
    if profile_to is not None and seed_side == "sv" and args.profile.startswith("py-spy"):
        spy = py_spy_attach(seeder.pid, profile_to.with_suffix(".seeder.txt"))
    seed_cpu0 = seeder.cpu()
    try:
        result = run_leecher(command, args.timeout, env)
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
    seed_cpu = seeder.cpu() - seed_cpu0
    shutil.rmtree(out)
    if result["bytes"] != args.size_mib * (1 << 20):
        raise RuntimeError(f"{scenario}: {result['bytes']} bytes downloaded")
    return {
        "scenario": scenario,
        "seconds": result["seconds"],
        "mib_s": result["bytes"] / MIB / result["seconds"],
        "leecher_cpu_per_gib": result["cpu"] / (result["bytes"] / GIB),
        "leecher_sys_per_gib": result["sys"] / (result["bytes"] / GIB),
        # servent only: the event loop thread's share (the rest: storage threads)
        "leecher_loop_per_gib": result.get("loop", 0.0) / (result["bytes"] / GIB),
        "seeder_cpu_per_gib": seed_cpu / (result["bytes"] / GIB),
    }


def profiled_scenario(scenario: str, profiler: str) -> bool:
    """servent leechers; for perf and syscalls libtorrent's too (to compare)."""
    if profiler in {"syscalls", "perf"}:
        return scenario in {"lt->lt", "lt->sv", "sv->sv"}
    return "sv" in scenario and scenario != "sv->lt"


def parent_main(args: argparse.Namespace) -> None:
    size = args.size_mib * (1 << 20)
    root = Path(args.dir)
    work = Path(tempfile.mkdtemp(prefix="servent-transfer-", dir=root))
    seeders: dict[str, Seeder] = {}
    try:
        t0 = time.perf_counter()
        torrent = make_payload(work, size, args.piece_kib * 1024, args.version)
        print(
            f"payload {args.size_mib} MiB, pieces of {args.piece_kib} KiB, {args.version}, "
            f"in {work} ({'tmpfs' if str(root).startswith('/dev/shm') else 'disk'}), "
            f"{os.cpu_count()} cores, servent on {args.loop}; "
            f"made in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        seeders["lt"] = Seeder("lt-seed", torrent, work / "seed", args.timeout)
        seeders["sv"] = Seeder("sv-seed", torrent, work / "seed", args.timeout, args.loop)
        known = (*SCENARIOS, BASELINE_SCENARIO) if args.baseline_src else SCENARIOS
        results: dict[str, list[dict[str, Any]]] = {s: [] for s in known if s in args.scenarios}
        for run in range(args.runs):
            chosen = tuple(results)
            shift = run % len(chosen)
            order = chosen[shift:] + chosen[:shift]
            for scenario in order:
                profile_to = None
                if args.profile and run == 0 and profiled_scenario(scenario, args.profile):
                    profile_to = work.parent / f"{work.name}-{scenario.replace('->', '-')}"
                result = transfer(scenario, seeders, torrent, work, args, profile_to)
                results[scenario].append(result)
                loop = result["leecher_loop_per_gib"]
                print(
                    f"run {run + 1} {scenario}: {result['mib_s']:7.1f} MiB/s "
                    f"({result['seconds']:.2f} s), CPU s/GiB seeder "
                    f"{result['seeder_cpu_per_gib']:.2f} leecher "
                    f"{result['leecher_cpu_per_gib']:.2f} (kernel "
                    f"{result['leecher_sys_per_gib']:.2f}"
                    + (f", loop thread {loop:.2f}" if loop else "")
                    + ")",
                    flush=True,
                )
        summary = {
            s: {
                key: median([r[key] for r in rs])
                for key in ("mib_s", "seconds", "seeder_cpu_per_gib", "leecher_cpu_per_gib")
            }
            for s, rs in results.items()
        }
        print_summary(summary, args)
        print_paired_ratios(results)
        if args.json:
            Path(args.json).write_text(json.dumps({"summary": summary, "runs": results}, indent=2))
        if args.profile:
            for scenario in ("lt->lt", "sv->sv", "lt->sv"):
                stem = work.parent / f"{work.name}-{scenario.replace('->', '-')}"
                for side in ("leecher", "seeder"):
                    path = stem.with_suffix(f".{side}.txt")
                    if path.exists():
                        report_profile(path, args.profile)
                        if not args.keep:
                            path.unlink()
    finally:
        for seeder in seeders.values():
            seeder.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child_main(sys.argv[2:])
        return
    parser = parent_arguments(description=__doc__.split("\n\n")[0])
    args = parser.parse_args()
    if args.dir is None:
        args.dir = tempfile.gettempdir()
    parent_main(args)


if __name__ == "__main__":
    main()
