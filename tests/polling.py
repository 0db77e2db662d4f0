"""Waiting in a test for state that offers nothing to await: a bounded poll, never a sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_for(
    condition: Callable[[], object], what: str, within: float = 30.0, every: float = 0.02
) -> None:
    """Poll ``condition()`` every ``every`` seconds until it is true; fail after ``within``."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        await asyncio.sleep(every)  # a bounded poll of state owned by tasks of this loop


def poll(check: Callable[[], T], what: str, within: float, every: float = 0.2) -> T:
    """``check()``'s first truthy answer, asked every ``every`` seconds (another process's
    state: nothing to await); fails after ``within`` seconds, showing the last answer."""
    return poll_until(check, bool, what, within, every)


def poll_until(
    fetch: Callable[[], T], accept: Callable[[T], object], what: str, within: float,
    every: float = 0.2,
) -> T:  # fmt: skip
    """``fetch()``'s first answer that ``accept`` takes, asked every ``every`` seconds;
    fails after ``within`` seconds, showing the last answer."""
    deadline = time.monotonic() + within
    value: T | None = None
    while time.monotonic() < deadline:
        value = fetch()
        if accept(value):
            return value
        time.sleep(every)  # polling another process, bounded
    raise AssertionError(f"not within {within} s: {what}; last: {value}")
