"""Run ``servent`` CLI commands as real child processes, torn down on exit.

Waits read the child's output line by line with a deadline (no sleeps); the
process is killed when the ``async with`` block ends, whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

LINE_DEADLINE = 60.0


class ServentProcess:
    """A ``python -m servent ...`` child with its stdout and stderr kept."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stdout: list[str] = []
        self.stderr: list[str] = []

    @property
    def pid(self) -> int:
        return self.process.pid

    async def wait_line(
        self, pattern: str, *, stream: str = "stdout", within: float = LINE_DEADLINE
    ) -> re.Match[str]:
        """Read ``stream`` until a line matches ``pattern``; fail after ``within`` seconds."""
        reader = self.process.stdout if stream == "stdout" else self.process.stderr
        lines = self.stdout if stream == "stdout" else self.stderr
        assert reader is not None
        for line in lines:
            if match := re.search(pattern, line):
                return match
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that
        # arrives just as its line does, and the caller would read on (test_servent_process).
        try:
            async with asyncio.timeout(within):
                return await self._read_until(reader, lines, pattern, stream)
        except TimeoutError:
            raise TimeoutError(f"no line matching {pattern!r}; {stream}: {lines[-10:]}") from None

    @staticmethod
    async def _read_until(
        reader: asyncio.StreamReader, lines: list[str], pattern: str, stream: str
    ) -> re.Match[str]:
        while True:
            raw = await reader.readline()
            if not raw:
                raise AssertionError(
                    f"servent exited before printing {pattern!r}; {stream}: {lines[-10:]}"
                )
            line = raw.decode(errors="replace").rstrip("\n")
            lines.append(line)
            if match := re.search(pattern, line):
                return match

    async def wait(self, within: float = LINE_DEADLINE) -> int:
        """Wait for the exit code, collecting the rest of the output.  A child still running
        after ``within`` is made to print where it is stuck (faulthandler) before failing."""
        try:
            async with asyncio.timeout(within):
                out, err = await self.process.communicate()
        except TimeoutError:
            self.kill(signal.SIGABRT)  # faulthandler prints every thread's stack, then it dies
            async with asyncio.timeout(10.0):
                out, err = await self.process.communicate()
            stuck = err.decode(errors="replace")[-4000:]
            raise AssertionError(f"servent ran on after {within} s; its stacks:\n{stuck}") from None
        self.stdout.extend(out.decode(errors="replace").splitlines())
        self.stderr.extend(err.decode(errors="replace").splitlines())
        assert self.process.returncode is not None
        return self.process.returncode

    def kill(self, signum: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signum)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.kill()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10.0):
                    await self.process.wait()


async def start_servent(*args: str | Path, cwd: Path | None = None) -> ServentProcess:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(sys.path),
        PYTHONUNBUFFERED="1",
        PYTHONFAULTHANDLER="1",  # a hung child shows its stacks on SIGABRT (see wait)
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "servent",
        *map(str, args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
        cwd=cwd,
        env=env,
    )
    return ServentProcess(process)


@contextlib.asynccontextmanager
async def servent(*args: str | Path, cwd: Path | None = None) -> AsyncIterator[ServentProcess]:
    """``servent ARGS`` as a child process, killed on exit."""
    child = await start_servent(*args, cwd=cwd)
    try:
        yield child
    finally:
        await child.stop()


async def run_servent(
    *args: str | Path, cwd: Path | None = None, within: float = LINE_DEADLINE
) -> tuple[int, list[str], list[str]]:
    """Run ``servent ARGS`` to completion: ``(exit code, stdout lines, stderr lines)``."""
    async with servent(*args, cwd=cwd) as child:
        code = await child.wait(within)
        return code, child.stdout, child.stderr
