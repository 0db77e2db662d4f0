"""Profilers for bench.transfer: py-spy (attached or wrapping) and pyinstrument.

Kept apart so the benchmark module stays about the transfers.  py-spy writes
raw (collapsed) stacks, summarised here as the top self-time functions.
``py-spy-gil`` samples only the thread holding the GIL (where the
interpreter's CPU goes, without threads waiting in the pool or in
``epoll``); start-up imports are left out of the summary either way.
``syscalls`` counts the syscalls of each leecher (libtorrent's too) during
the transfer, every thread (``perf stat`` on syscall tracepoints).
``perf`` samples the leecher's CPU during the transfer (every thread, the
kernel included; the leecher attaches Linux ``perf`` to itself once set up)
and prints the share of each library (interpreter, libcrypto's
SHA-1, libc's copies, the kernel) and the top native symbols: where CPU goes
below the Python functions py-spy names.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path


def _py_spy() -> str:
    return shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"


def py_spy_attach(pid: int, output: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [_py_spy(), "record", "--format", "raw", "--rate", "200", "--nonblocking",
         "-o", str(output), "--pid", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def profiled(command: list[str], profiler: str | None, output: Path) -> list[str]:
    if profiler == "perf":
        return [*command, "--perf", str(output)]  # the leecher attaches perf to itself
    if profiler == "syscalls":
        return [*command, "--syscalls", str(output)]  # likewise, for syscall counts
    if profiler in {"py-spy", "py-spy-gil"}:
        gil = ["--gil"] if profiler == "py-spy-gil" else []
        rate = "1000" if gil else "200"  # GIL samples are fewer: sample faster
        return [_py_spy(), "record", "--format", "raw", "--rate", rate, "--nonblocking",
                *gil, "-o", str(output), "--", *command]  # fmt: skip
    if profiler == "pyinstrument":
        return [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(output),
                *command[1:]]  # fmt: skip
    return command


def perf_attach(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """``perf record`` of process ``pid`` into ``output``, given a moment to start."""
    perf = subprocess.Popen(
        ["perf", "record", "--quiet", "-F", "2000", "-o", str(output), "-p", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # perf needs a moment to attach (before the measurement starts)
    return perf


#: what ``--profile syscalls`` counts: the syscalls of a download, and scheduling
SYSCALL_EVENTS = (
    *(f"syscalls:sys_enter_{name}" for name in (
        "recvfrom", "read", "readv", "sendto", "sendmsg", "write", "writev", "pwrite64",
        "pwritev", "epoll_wait", "futex", "getpid", "mprotect", "madvise", "mmap", "munmap",
    )),
    "context-switches", "cpu-migrations", "page-faults",
)  # fmt: skip


def syscalls_attach(pid: int, output: Path) -> subprocess.Popen[bytes]:
    """``perf stat`` counting syscalls of every thread of ``pid``, given a moment to start.

    Tracepoint counts cost little, unlike ``strace``, whose slowed process
    reads in larger bursts and so would not show the real counts.
    """
    stat = subprocess.Popen(
        ["perf", "stat", "-e", ",".join(SYSCALL_EVENTS), "-o", str(output), "-p", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)  # perf needs a moment to attach
    return stat


def top_functions(raw: Path, limit: int = 15) -> list[tuple[str, float, float]]:
    """(function, self %, total %) from py-spy's raw (collapsed) stacks."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit() or "importlib" in stack:
            continue  # not a sample, or start-up (imports)
        count = int(count_text)
        samples += count
        frames = [frame.rsplit(":", 1)[0] + ")" if ":" in frame else frame
                  for frame in stack.split(";")]  # fmt: skip
        own[frames[-1]] += count
        for frame in set(frames):
            total[frame] += count
    if not samples:
        return []
    return [(name, 100 * n / samples, 100 * total[name] / samples)
            for name, n in own.most_common(limit)]  # fmt: skip


def report_profile(path: Path, profiler: str) -> None:
    if not path.exists():
        print(f"  (no profile written to {path})")
        return
    print(f"\n--- profile {path.name}")
    if profiler == "perf":
        for keys, limit in (("dso", 8), ("dso,sym", 25)):
            print(perf_report(path, keys, limit))
        return
    if profiler in {"pyinstrument", "syscalls"}:
        print(path.read_text()[:8000])
        return
    for name, self_pct, total_pct in top_functions(path):
        print(f"  self {self_pct:5.1f}%  total {total_pct:5.1f}%  {name}")


def perf_report(path: Path, keys: str, limit: int) -> str:
    """The top ``limit`` rows of ``perf report`` sorted by ``keys``, as text."""
    command = ["perf", "report", "-i", str(path), "--sort", keys, "--stdio", "--no-children"]
    report = subprocess.run(command, capture_output=True, text=True, check=False).stdout
    rows = [line for line in report.splitlines() if line.strip() and not line.startswith("#")]
    return "\n".join(rows[:limit])


def attach_tracer(perf_to: Path | None, syscalls_to: Path | None) -> subprocess.Popen[bytes] | None:
    """perf (samples or syscall counts) attached to this process (``--profile``)."""
    if perf_to is not None:
        return perf_attach(os.getpid(), perf_to)
    if syscalls_to is not None:
        return syscalls_attach(os.getpid(), syscalls_to)
    return None


def stop_tracer(tracer: subprocess.Popen[bytes] | None) -> None:
    if tracer is not None:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(60)
