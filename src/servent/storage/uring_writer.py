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
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import os
from collections import deque
from dataclasses import dataclass, field

from servent.storage.uring import IoUring, open_ring

log = logging.getLogger(__name__)

__all__ = ["UringWriter", "open_writer"]

# Writes still running when their writer closed (a drain that timed out):
# kept for the life of the process so the kernel never reads freed memory.
_STRANDED: list[_Write] = []


@dataclass(slots=True)
class _Write:
    fd: int
    offset: int
    pinned: ctypes.Array[ctypes.c_char]
    future: asyncio.Future[None]
    done: int = 0
    tag: int = field(default=0)

    @property
    def remaining(self) -> int:
        return len(self.pinned) - self.done


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
        if self._closed:
            raise RuntimeError("the writer is closed")
        view = memoryview(data)
        if view.readonly or not view.c_contiguous:
            view = memoryview(bytearray(view))
        if not view.nbytes:
            return
        pinned = (ctypes.c_char * view.nbytes).from_buffer(view)
        write = _Write(fd, offset, pinned, self._loop.create_future())
        self._waiting.append(write)
        self._start_waiting()
        try:
            await asyncio.shield(write.future)
        except asyncio.CancelledError:
            if not write.future.done():  # the kernel may still read the buffer: wait for it
                await asyncio.wait([write.future])
                write.future.exception()
            raise

    async def drain(self, limit: float) -> bool:
        """Wait (at most ``limit`` s) until no write is running; False if some still are."""
        futures = [w.future for w in (*self._running.values(), *self._waiting)]
        if not futures:
            return True
        _done, pending = await asyncio.wait(futures, timeout=limit)
        return not pending

    def close(self) -> None:
        """Stop watching completions and release the ring (call after :meth:`drain`)."""
        if self._closed:
            return
        self._closed = True
        self._loop.remove_reader(self._eventfd)
        for write in (*self._running.values(), *self._waiting):
            if not write.future.done():
                write.future.set_exception(OSError(errno.ECANCELED, "storage closed"))
        if self._running:  # the kernel may still read them: their buffers must outlive us
            log.warning("%d io_uring writes still running at close", len(self._running))
            _STRANDED.extend(self._running.values())
        self._ring.close()
        os.close(self._eventfd)

    # -- internals ------------------------------------------------------------

    def _start_waiting(self) -> None:
        ring = self._ring
        batch: list[_Write] = []
        while self._waiting and ring.space() > 0:
            write = self._waiting.popleft()
            self._queue(write)
            batch.append(write)
        dropped = ring.submit() if batch else 0
        for write in batch[len(batch) - dropped :]:  # the kernel refused these: they never ran
            del self._running[write.tag]
            if not write.future.done():
                write.future.set_exception(OSError(errno.EIO, "io_uring refused the write"))

    def _queue(self, write: _Write) -> None:
        tag = self._next_tag
        self._next_tag += 1
        write.tag = tag
        self._running[tag] = write
        address = ctypes.addressof(write.pinned) + write.done
        self._ring.queue_write(write.fd, address, write.remaining, write.offset + write.done, tag)

    def _completions_ready(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._eventfd)
        for completion in self._ring.reap():
            write = self._running.pop(completion.user_data, None)
            if write is not None:
                self._settle(write, completion.result)
        self._start_waiting()

    def _settle(self, write: _Write, result: int) -> None:
        if result < 0:
            error = OSError(-result, os.strerror(-result))
        elif result == 0:
            error = OSError(errno.EIO, "the write made no progress")
        else:
            write.done += result
            if write.remaining > 0:  # a short write: the rest goes in again
                self._waiting.appendleft(write)
                return
            error = None
        if not write.future.done():
            if error is None:
                write.future.set_result(None)
            else:
                write.future.set_exception(error)
