"""What ``servent get`` shows of a download: a live bar on a terminal, one line at the end."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from servent.codec.metainfo import Metainfo
    from servent.net.torrent_session import TorrentSession


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.1f} {unit}" if unit != "B" else f"{int(count)} B"
        count /= 1024
    return f"{count:.1f} GiB"


class ProgressDisplay:
    """A rich progress bar on stderr's terminal; nothing when not a terminal."""

    def __init__(self, name: str, torrent: TorrentSession) -> None:
        self.name = name
        self.torrent = torrent
        self._progress: object | None = None
        self._task: object | None = None

    def __enter__(self) -> ProgressDisplay:
        if not sys.stderr.isatty():
            return self
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            Progress,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        progress = Progress(
            TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
            TransferSpeedColumn(), TextColumn("{task.fields[peers]} peers"),
            TimeRemainingColumn(), console=Console(stderr=True), transient=False,
        )  # fmt: skip
        progress.start()
        stats = self.torrent.statistics()
        self._task = progress.add_task(
            self.name, total=stats.wanted_bytes, completed=stats.have_bytes, peers=stats.peers
        )
        self._progress = progress
        return self

    def update(self) -> None:
        if self._progress is None:
            return
        from rich.progress import Progress, TaskID

        assert isinstance(self._progress, Progress)
        stats = self.torrent.statistics()
        task = TaskID(int(self._task))  # type: ignore[call-overload]
        self._progress.update(task, completed=stats.have_bytes, peers=stats.peers)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            from rich.progress import Progress

            self.update()
            assert isinstance(self._progress, Progress)
            self._progress.stop()


def print_summary(
    meta: Metainfo, torrent: TorrentSession, output: Path, elapsed: float, resumed: int
) -> None:
    stats = torrent.statistics()
    fetched = stats.have_bytes - resumed
    rate = fetched / elapsed if elapsed > 0 else 0.0
    sources = stats.sources  # a peer reached over two connections counts once
    extra = f", {format_bytes(resumed)} resumed" if resumed else ""
    print(
        f"{meta.name}: {format_bytes(stats.have_bytes)} verified in {output} "
        f"({format_bytes(fetched)} in {elapsed:.1f} s, {format_bytes(rate)}/s, "
        f"from {sources} peer(s){extra})",
        flush=True,
    )
