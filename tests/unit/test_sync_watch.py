"""Folder watching wakes the sync loop on a user's change, not on sync's own bookkeeping."""

from __future__ import annotations

import asyncio
from pathlib import Path

from servent.node.sync_watch import FolderWatcher
from servent.storage.sync_folder import TEMPORARY_SUFFIX, VERSIONS_FOLDER

WAIT = 30.0


async def test_a_change_wakes_and_bookkeeping_does_not(tmp_path: Path) -> None:
    (tmp_path / VERSIONS_FOLDER).mkdir()
    woken = asyncio.Event()
    watcher = FolderWatcher(woken.set)
    watcher.watch("share", tmp_path)
    try:
        # Sync's own files: kept versions and temporary copies are not changes.
        # (Written until the watch is surely running: a user change is then seen.)
        (tmp_path / VERSIONS_FOLDER / "old~20260101-000000").write_bytes(b"kept")
        (tmp_path / f".f{TEMPORARY_SUFFIX}").write_bytes(b"half")
        await asyncio.sleep(0)  # let the watch start
        async with asyncio.timeout(WAIT):
            while not woken.is_set():
                (tmp_path / VERSIONS_FOLDER / "again").write_bytes(b"kept")
                (tmp_path / "user.txt").write_bytes(b"a user's change")
                await asyncio.wait([asyncio.create_task(woken.wait())], timeout=1.0)
        # A late batch of the user's writes above may still come: let it, then clear.
        await asyncio.wait([asyncio.create_task(woken.wait())], timeout=0.5)
        woken.clear()
        # Bookkeeping alone, for longer than the debounce, wakes nothing.
        for _ in range(5):
            (tmp_path / VERSIONS_FOLDER / "more").write_bytes(b"kept")
            (tmp_path / f".g{TEMPORARY_SUFFIX}").write_bytes(b"half")
            await asyncio.wait([asyncio.create_task(woken.wait())], timeout=0.3)
        assert not woken.is_set()
    finally:
        await watcher.close()
    assert watcher._watches == {}
