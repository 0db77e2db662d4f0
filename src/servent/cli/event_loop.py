"""The event loop the command line runs its commands on: uvloop where it is installed.

Why uvloop (decision 0056): the leecher's loop thread runs one socket read,
one refill and one piece hand-off after another, and libuv's transports and
loop cost less interpreter per read than asyncio's selector loop; measured,
the leecher spends 0.8-0.9x the CPU per byte it spends on asyncio's loop.
The library itself runs on any asyncio loop: only the command line chooses.

``SERVENT_LOOP=asyncio`` picks the standard loop (to compare, or to rule the
loop out when chasing a bug); a platform without uvloop gets it as well.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from servent.errors import ConfigError

__all__ = ["ENV_VAR", "loop_factory", "loop_name", "run"]

ENV_VAR = "SERVENT_LOOP"
CHOICES = ("uvloop", "asyncio")

T = TypeVar("T")


def loop_name() -> str:
    """The loop :func:`run` will use: ``uvloop`` or ``asyncio``."""
    choice = os.environ.get(ENV_VAR, "").strip().lower() or "uvloop"
    if choice not in CHOICES:
        raise ConfigError(f"{ENV_VAR}={choice!r}: expected one of {', '.join(CHOICES)}")
    if choice == "uvloop" and _uvloop_factory() is None:
        return "asyncio"
    return choice


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A factory for :class:`asyncio.Runner`; None means asyncio's own loop."""
    return _uvloop_factory() if loop_name() == "uvloop" else None


def run(main: Coroutine[Any, Any, T]) -> T:
    """Like :func:`asyncio.run`, on the loop :func:`loop_name` names."""
    try:
        factory = loop_factory()
    except ConfigError:
        main.close()  # never awaited: no "coroutine was never awaited" warning
        raise
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory
