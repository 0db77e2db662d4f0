"""Verifying and storing the pieces the swarm core completes, and who waits for them.

The I/O half of the core's :class:`~servent.proto.swarm.VerifyPiece` action:
``TorrentStorage.write_piece`` hashes a piece and writes it only if valid
(hashing on the loop thread and writing through io_uring where the kernel
allows, else both in a worker thread); the outcome goes back to the core
(:meth:`~servent.proto.swarm.SwarmCore.piece_checked`) and to whoever awaits
that piece (web seeds) or any progress (``wait_have``).  Its own state: the
waiters.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from servent.errors import StorageError
from servent.proto.swarm import PeerIdentity, SwarmCore, VerifyPiece
from servent.storage import TorrentStorage

__all__ = ["PieceChecks"]


class PieceChecks:
    """Runs piece verifications for one torrent; see the module docstring."""

    def __init__(
        self,
        core: SwarmCore,
        storage: TorrentStorage,
        *,
        after: Callable[[], None],
        failed: Callable[[BaseException], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.core = core
        self.storage = storage
        self.loop = loop
        self._after = after  # the shell carries out what the core decided meanwhile
        self._failed = failed
        self._waiters: dict[int, list[asyncio.Future[bool]]] = {}
        self._progressed: asyncio.Event | None = None

    @property
    def progressed(self) -> asyncio.Event:
        """Set at the next verified piece (then replaced by a fresh one), or when stopping."""
        progressed = self._progressed
        if progressed is None:  # made when asked for: most pieces have nobody waiting
            progressed = self._progressed = asyncio.Event()
        return progressed

    def outcome(self, index: int) -> asyncio.Future[bool]:
        """Resolves with whether piece ``index`` passed its hash, the next time it is checked."""
        future: asyncio.Future[bool] = self.loop.create_future()
        self._waiters.setdefault(index, []).append(future)
        return future

    def start(self, action: VerifyPiece, tasks: asyncio.TaskGroup | None) -> None:
        coro = self.check(action.index, action.data, action.sources)
        if tasks is None:  # the torrent is stopping
            coro.close()
            self.core.piece_abandoned(action.data)
            return
        tasks.create_task(coro)  # unnamed: a name costs a fifth of the task (see check())

    async def check(self, index: int, data: bytearray, sources: dict[int, PeerIdentity]) -> None:
        """Verify and store one piece (the task :meth:`start` made), then tell the core."""
        try:
            ok = await self.storage.write_piece(index, data)
        except BaseException as exc:
            self.core.piece_abandoned(data)
            self._after()
            if isinstance(exc, StorageError):
                self._failed(exc)
            raise
        for waiter in self._waiters.pop(index, ()):
            if not waiter.done():
                waiter.set_result(ok)
        if ok and self._progressed is not None:
            self._progressed.set()
            self._progressed = None
        self.core.piece_checked(index, data, sources, ok, self.loop.time())
        self._after()
