"""The child-process helper of the e2e tests keeps a cancellation it is given.

Regression: ``test_churn`` timed out in CI after its download had completed.
The churn task, cancelled at the end, was reading a new seeder's
``listening on`` line; on Python 3.11 ``asyncio.wait_for`` returns the
result of an inner read that finished in the same loop turns as the cancel,
so the cancellation was lost and the churn went on until the deadline.
"""

from __future__ import annotations

import asyncio
import select

import pytest
from servent_cli import ServentProcess

pytestmark = pytest.mark.e2e

LINE = b"listening on 127.0.0.1:1\n"


async def _cancel_turns_after_line(turns: int) -> str:
    """Cancel ``wait_line`` ``turns`` loop turns after its line is readable: how it ended."""
    process = await asyncio.create_subprocess_exec(
        "cat",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    child = ServentProcess(process)
    try:
        reading = asyncio.create_task(child.wait_line(r"^listening on", within=30.0))
        await asyncio.sleep(0)  # the reader is waiting before the line exists
        assert process.stdin is not None
        process.stdin.write(LINE)
        await process.stdin.drain()
        pipe = process._transport.get_pipe_transport(1).get_extra_info("pipe")  # type: ignore[attr-defined]
        readable, _, _ = select.select([pipe], [], [], 10.0)  # the kernel holds the line
        assert readable, "cat did not echo the line within 10 s"
        for _ in range(turns):
            await asyncio.sleep(0)
        if reading.done():
            return "read before the cancel"
        reading.cancel()
        try:
            await reading
        except asyncio.CancelledError:
            return "cancelled"
        return "cancellation lost"
    finally:
        await child.stop()


async def test_wait_line_cancelled_as_its_line_arrives_stays_cancelled() -> None:
    outcomes = [await _cancel_turns_after_line(turns) for turns in range(8)]
    assert "cancellation lost" not in outcomes, outcomes
    # The cancel landed while the line was on its way at least once (the case that broke).
    assert "cancelled" in outcomes, outcomes
