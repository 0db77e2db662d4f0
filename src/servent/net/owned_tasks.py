"""Stopping the background tasks an object owns, all at once.

Why: every service that starts tasks cancels them on close and must wait
for them to end before it releases what they use (sockets, databases).
Cancelling them all first lets them wind down together instead of one
after another; an error they end with was theirs to log, so it is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

__all__ = ["cancel_and_wait"]


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel every task in ``tasks`` (copied first), then wait until each has ended."""
    owned = list(tasks)
    for task in owned:
        task.cancel()
    for task in owned:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
