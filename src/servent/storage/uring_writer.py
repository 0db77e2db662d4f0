"""Positional writes through io_uring, submitted and completed on the event-loop thread.

Why: handing each verified piece to a pool thread for its ``pwrite`` costs
GIL hand-offs and wake-ups per piece; here the loop thread queues the write
in the ring (no Python thread involved), the kernel's io-wq workers do the
blocking part, and the completion wakes the loop through an eventfd watched
with ``loop.add_reader``.  A slow disk therefore delays the write, never
the loop.

Each write's buffer is pinned (a ctypes view holds a buffer export, and the
write keeps it) until its completion is read, even when the awaiting task
is cancelled: the awaiting coroutine returns only once the kernel is done
with the memory, so a caller may reuse its buffer as soon as it returns.
Short writes are resumed where they stopped; ``-errno`` results become
``OSError``.

Per piece the loop thread's Python is kept small: the writes of one call
(the spans of a piece) are queued together and submitted with one
``io_uring_enter``, and the caller awaits one future for all of them (no
``asyncio.shield`` per write: a cancelled caller waits on a fresh future
until the last of its writes is reaped).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import logging
import os
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from servent.storage.uring import IoUring, open_ring

log = logging.getLogger(__name__)

__all__ = ["Batch", "Part", "UringWriter", "open_writer"]

# Writes still running when their writer closed (a drain that timed out):
# kept for the life of the process so the kernel never reads freed memory.
_STRANDED: list[_Write] = []


Part = tuple[int, int, bytes | bytearray | memoryview]
"""One write of :meth:`UringWriter.pwrite_all`: ``(fd, offset, data)``."""


@dataclass(slots=True)
class Batch:
    """The writes of one :meth:`UringWriter.submit` call, awaited together."""

    future: asyncio.Future[None]
    left: int = 0  # writes the kernel has not finished
    failed: tuple[int, OSError] | None = None  # the first failure: position in the call, error


@dataclass(slots=True)
class _Write:
    fd: int
    offset: int
    pinned: ctypes.c_char  # its first byte; holds a buffer export: the memory stays put
    size: int
    batch: Batch
    position: int
    done: int = 0
    tag: int = 0


def open_writer(loop: asyncio.AbstractEventLoop) -> UringWriter | None:
    """A writer on a new ring, or ``None`` where io_uring is not usable (then: the pool)."""
    ring = open_ring()
    if ring is None:
        return None
    try:
        return UringWriter(ring, loop)
    except OSError as exc:
        ring.close()
        log.info("io_uring eventfd refused (%s): piece writes stay in the thread pool", exc)
        return None


class UringWriter:
    """Writes whole buffers at file offsets; one per event loop user, loop thread only."""

    def __init__(self, ring: IoUring, loop: asyncio.AbstractEventLoop) -> None:
        self._ring = ring
        self._loop = loop
        self._eventfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        try:
            ring.register_eventfd(self._eventfd)
        except OSError:
            os.close(self._eventfd)
            raise
        loop.add_reader(self._eventfd, self._completions_ready)
        self._running: dict[int, _Write] = {}
        self._waiting: deque[_Write] = deque()  # the ring was full when they came
        self._idle: asyncio.Future[None] | None = None  # what drain() waits for
        self._next_tag = 1
        self._closed = False

    @property
    def busy(self) -> int:
        """Writes not finished yet (queued or running)."""
        return len(self._running) + len(self._waiting)

    async def pwrite(self, fd: int, offset: int, data: bytes | bytearray | memoryview) -> None:
        """Write all of ``data`` at ``offset`` of ``fd``; returns when the kernel is done with it.

        Cancelling the caller still waits for the kernel to let go of ``data``.
        """
        failed = await self.pwrite_all(((fd, offset, data),))
        if failed is not None:
            raise failed[1]

    async def pwrite_all(self, parts: Iterable[Part]) -> tuple[int, OSError] | None:
        """Write every ``(fd, offset, data)`` of ``parts``, submitted together.

        Returns once the kernel is done with every buffer (also when the caller
        is cancelled): ``None`` if all were written, else the position in
        ``parts`` and the error of the first write that failed (in the order
        the failures came).
        """
        batch = self.submit(parts)
        if batch is None:
            return None
        try:
            await batch.future
        except asyncio.CancelledError:
            await self.outlast(batch)
            raise
        return batch.failed

    def submit(self, parts: Iterable[Part]) -> Batch | None:
        """Queue and submit every part of ``parts`` now; ``None`` if none has a byte to write.

        For a caller that awaits the batch's ``future`` itself (one coroutine
        frame less per piece than :meth:`pwrite_all`): once it resolves,
        ``failed`` is as :meth:`pwrite_all` returns it.  A cancelled caller
        must ``await`` :meth:`outlast` before it lets go of the buffers.
        """
        if self._closed:
            raise RuntimeError("the writer is closed")
        batch = Batch(self._loop.create_future())
        writes = []
        for position, (fd, offset, data) in enumerate(parts):
            buffer = data
            if type(buffer) is not bytearray:  # readonly or strided: written from a copy
                view = memoryview(buffer)
                if view.readonly or not view.c_contiguous:
                    buffer = bytearray(view)
            size = len(buffer) if type(buffer) is bytearray else memoryview(buffer).nbytes
            if size:
                pinned = ctypes.c_char.from_buffer(buffer)  # no array type per size: cheaper
                writes.append(_Write(fd, offset, pinned, size, batch, position))
        if not writes:
            return None
        batch.left = len(writes)
        self._waiting.extend(writes)  # all pinned, or none queued
        self._start_waiting()
        return batch

    async def outlast(self, batch: Batch) -> None:
        """Wait until the kernel is done with every buffer of ``batch`` (for a cancelled caller)."""
        if batch.left:  # the kernel may still read the buffers: wait for it
            batch.future = self._loop.create_future()
            await asyncio.wait([batch.future])

    async def drain(self, limit: float) -> bool:
        """Wait (at most ``limit`` s) until no write is running; False if some still are."""
        if not self.busy:
            return True
        if self._idle is None or self._idle.done():
            self._idle = self._loop.create_future()
        await asyncio.wait([self._idle], timeout=limit)
        return not self.busy

    def close(self) -> None:
        """Stop watching completions and release the ring (call after :meth:`drain`)."""
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._eventfd)
        running = list(self._running.values())
        for write in (*running, *self._waiting):
            self._finish(write, OSError(errno.ECANCELED, "storage closed"))
        self._waiting.clear()
        if running:  # the kernel may still read them: their buffers must outlive us
            log.warning("%d io_uring writes still running at close", len(running))
            _STRANDED.extend(running)
        self._running.clear()
        if self._idle is not None and not self._idle.done():
            self._idle.set_result(None)  # a drain() still waiting: nothing more will come
        self._ring.close()
        os.close(self._eventfd)

    # -- internals ------------------------------------------------------------

    def _start_waiting(self) -> None:
        ring = self._ring
        waiting = self._waiting
        running = self._running
        queued: list[_Write] = []
        space = ring.space()
        while waiting and len(queued) < space:
            write = waiting.popleft()
            tag = self._next_tag
            self._next_tag = tag + 1
            write.tag = tag
            running[tag] = write
            done = write.done
            ring.queue_write(
                write.fd, ctypes.addressof(write.pinned) + done, write.size - done,
                write.offset + done, tag,
            )  # fmt: skip
            queued.append(write)
        if not queued:
            return
        dropped = ring.submit()
        if dropped:  # the kernel refused the last ``dropped`` writes: they never ran
            for write in queued[len(queued) - dropped :]:
                del running[write.tag]
                self._finish(write, OSError(errno.EIO, "io_uring refused the write"))
            self._check_idle()

    def _completions_ready(self) -> None:
        try:  # noqa: SIM105 - not contextlib.suppress: three Python calls per wake-up
            os.eventfd_read(self._eventfd)
        except BlockingIOError:
            pass
        running = self._running
        for tag, result in self._ring.reap():
            write = running.pop(tag, None)
            if write is not None:
                self._settle(write, result)
        self._start_waiting()
        self._check_idle()

    def _settle(self, write: _Write, result: int) -> None:
        if result > 0:
            write.done += result
            if write.done < write.size:  # a short write: the rest goes in again
                self._waiting.appendleft(write)
                return
            error = None
        elif result < 0:
            error = OSError(-result, os.strerror(-result))
        else:
            error = OSError(errno.EIO, "the write made no progress")
        self._finish(write, error)

    @staticmethod
    def _finish(write: _Write, error: OSError | None) -> None:
        batch = write.batch
        batch.left -= 1
        if error is not None and batch.failed is None:
            batch.failed = (write.position, error)
        if not batch.left and not batch.future.done():
            batch.future.set_result(None)

    def _check_idle(self) -> None:
        idle = self._idle
        if idle is not None and not self.busy and not idle.done():
            idle.set_result(None)
