"""Watching synced folders, so a change is published at once (``docs/sync.md`` section 3).

``watchfiles`` (inotify on Linux, the native watcher elsewhere) wakes the
sync loop on every change; the loop's periodic rescan stays as the fallback
for what a watcher can miss (network file systems, a watch that failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

import watchfiles

from servent.storage.sync_folder import TEMPORARY_SUFFIX, VERSIONS_FOLDER

__all__ = ["FolderWatcher"]

log = logging.getLogger(__name__)

#: Milliseconds of quiet before a burst of changes is reported as one.
DEBOUNCE_MS = 200
#: Seconds a stopping watch may take to notice.
STOP_WAIT = 5.0


def _wanted(root: Path) -> Callable[[watchfiles.Change, str], bool]:
    """Changes to the user's files; not to kept versions nor our own temporary files."""

    def wanted(_change: watchfiles.Change, path: str) -> bool:
        parts = Path(path).relative_to(root).parts if path.startswith(str(root)) else ()
        return not (parts and parts[0] == VERSIONS_FOLDER) and not path.endswith(TEMPORARY_SUFFIX)

    return wanted


class FolderWatcher:
    """One watch per folder; each change calls ``on_change``."""

    def __init__(self, on_change: Callable[[], None]) -> None:
        self._on_change = on_change
        self._watches: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}

    def watch(self, name: str, folder: Path) -> None:
        """Watch ``folder`` under ``name`` unless it is watched already."""
        if name in self._watches and not self._watches[name][0].done():
            return
        stop = asyncio.Event()
        task = asyncio.get_running_loop().create_task(
            self._run(folder, stop), name=f"sync-watch-{name}"
        )
        self._watches[name] = (task, stop)

    async def unwatch(self, name: str) -> None:
        watch = self._watches.pop(name, None)
        if watch is not None:
            await _stop(*watch)

    async def close(self) -> None:
        watches, self._watches = list(self._watches.values()), {}
        await asyncio.gather(*(_stop(task, stop) for task, stop in watches))

    async def _run(self, folder: Path, stop: asyncio.Event) -> None:
        try:
            async for _ in watchfiles.awatch(
                folder, watch_filter=_wanted(folder), debounce=DEBOUNCE_MS,
                stop_event=stop, ignore_permission_denied=True,
            ):  # fmt: skip
                self._on_change()
        except (OSError, RuntimeError) as exc:  # the rescan goes on without it
            log.warning("cannot watch %s (rescanning instead): %s", folder, exc)


async def _stop(task: asyncio.Task[None], stop: asyncio.Event) -> None:
    stop.set()
    try:
        async with asyncio.timeout(STOP_WAIT):
            await asyncio.shield(task)
    except TimeoutError:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
