"""Waiting in a test for state that offers nothing to await: a bounded poll, never a sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def wait_for(
    condition: Callable[[], object], what: str, within: float = 30.0, every: float = 0.02
) -> None:
    """Poll ``condition()`` every ``every`` seconds until it is true; fail after ``within``."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(every)  # a bounded poll of state owned by tasks of this loop
