"""A minimal io_uring for positional writes: the rings mapped, writes queued, completions read.

Why our own: the piece path needs one operation (``IORING_OP_WRITE`` at an
offset) submitted from the event-loop thread, and the PyPI ``liburing``
wheel is built for AVX-512 (it dies with an illegal instruction on CPUs
without it).  The kernel ABI is small and stable: ``io_uring_setup``,
three ``mmap`` regions, ``io_uring_enter`` and ``io_uring_register``.

Memory ordering: the kernel reads submissions only inside our
``io_uring_enter`` (no ``SQPOLL``), so program order is enough there; it
publishes completions with a release store, which x86-64's ordering of
loads honours.  So the ring is offered on x86-64 Linux only;
:func:`open_ring` returns ``None`` anywhere else, or when the kernel
refuses (old kernel, ``io_uring_disabled``, seccomp): callers keep the
thread pool then.

Not thread-safe: one owner (the event-loop thread) submits and reaps.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import mmap
import os
import platform
import struct
import sys
from collections.abc import Callable

log = logging.getLogger(__name__)

__all__ = ["IoUring", "open_ring"]

_SYS_SETUP, _SYS_ENTER, _SYS_REGISTER = 425, 426, 427  # x86-64 numbers
_OP_WRITE = 23
_REGISTER_EVENTFD = 4
_FEAT_SINGLE_MMAP = 1
_OFF_SQ_RING, _OFF_CQ_RING, _OFF_SQES = 0, 0x8000000, 0x10000000
_PARAMS_SIZE = 120
_ZERO = ctypes.c_long(0)
_SQE = struct.Struct("<BBHiQQIIQHHiQQ")  # 64 bytes, struct io_uring_sqe
_CQE = struct.Struct("<QiI")  # 16 bytes, struct io_uring_cqe
_U32 = struct.Struct("<I")
_OFFSETS = struct.Struct("<7I")  # sq: head tail mask entries flags dropped array


_Syscall = Callable[..., int]


def _syscall() -> _Syscall | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:  # pragma: no cover - a libc is always there on Linux
        return None
    func = libc.syscall
    func.restype = ctypes.c_long
    return func


def open_ring(entries: int = 128) -> IoUring | None:
    """A ring with ``entries`` submission slots, or ``None`` where io_uring is not usable."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        return None
    if os.environ.get("SERVENT_NO_URING"):
        return None
    syscall = _syscall()
    if syscall is None:  # pragma: no cover
        return None
    try:
        return IoUring(syscall, entries)
    except OSError as exc:
        log.info("io_uring not available (%s): piece writes stay in the thread pool", exc)
        return None


class IoUring:
    """One io_uring instance: queue writes, submit them, read completions."""

    def __init__(self, syscall: _Syscall, entries: int) -> None:
        self._syscall = syscall
        params = ctypes.create_string_buffer(_PARAMS_SIZE)
        fd = syscall(ctypes.c_long(_SYS_SETUP), ctypes.c_long(entries), params)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"io_uring_setup: {os.strerror(err)}")
        self.fd = fd
        self._enter_head = (ctypes.c_long(_SYS_ENTER), ctypes.c_long(fd))  # made once, not per call
        try:
            self._map(params.raw)
        except BaseException:
            os.close(fd)
            raise
        self._pending = 0  # queued, not yet submitted
        self.in_flight = 0  # submitted, not yet reaped
        self._closed = False

    def _map(self, raw: bytes) -> None:
        sq_entries, cq_entries, _flags, _cpu, _idle, features = struct.unpack_from("<6I", raw, 0)
        if not features & _FEAT_SINGLE_MMAP:
            raise OSError(0, "io_uring without IORING_FEAT_SINGLE_MMAP (kernel < 5.4)")
        sq = _OFFSETS.unpack_from(raw, 40)
        cq = struct.unpack_from("<6I", raw, 80)  # head tail mask entries overflow cqes
        self.sq_entries: int = sq_entries
        self.cq_entries: int = cq_entries
        size = max(sq[6] + sq_entries * 4, cq[5] + cq_entries * _CQE.size)
        self._rings = mmap.mmap(self.fd, size, offset=_OFF_SQ_RING)
        self._sqes = mmap.mmap(self.fd, sq_entries * _SQE.size, offset=_OFF_SQES)
        self._sq_tail_at, self._cq_head_at, self._cq_tail_at = sq[1], cq[0], cq[1]
        self._sq_mask = _U32.unpack_from(self._rings, sq[2])[0]  # offsets point at the values
        self._cq_mask = _U32.unpack_from(self._rings, cq[2])[0]
        self._cqes_at = cq[5]
        for slot in range(sq_entries):  # the index array maps slot i to sqe i, once for all
            _U32.pack_into(self._rings, sq[6] + slot * 4, slot)
        self._sq_tail = _U32.unpack_from(self._rings, sq[1])[0]
        self._cq_head = _U32.unpack_from(self._rings, cq[0])[0]

    def register_eventfd(self, efd: int) -> None:
        """Have the kernel signal ``efd`` on each completion."""
        arg = ctypes.c_int32(efd)
        self._enter_checked(_SYS_REGISTER, self.fd, _REGISTER_EVENTFD, ctypes.byref(arg), 1)

    def space(self) -> int:
        """How many more writes may be queued now (the completion ring must never overflow)."""
        queued = self._pending
        return min(self.sq_entries - queued, self.cq_entries - self.in_flight - queued)

    def queue_write(self, fd: int, address: int, length: int, offset: int, user_data: int) -> None:
        """Queue ``pwrite(fd, address, length, offset)``; it starts at :meth:`submit`."""
        queued = self._pending  # space() > 0, inlined (once per write)
        if queued >= self.sq_entries or queued + self.in_flight >= self.cq_entries:
            raise RuntimeError("io_uring full: check space() first")
        slot = self._sq_tail & self._sq_mask
        _SQE.pack_into(
            self._sqes, slot * _SQE.size, _OP_WRITE, 0, 0, fd, offset, address, length, 0,
            user_data, 0, 0, 0, 0, 0,
        )  # fmt: skip
        self._sq_tail = (self._sq_tail + 1) & 0xFFFFFFFF
        _U32.pack_into(self._rings, self._sq_tail_at, self._sq_tail)
        self._pending += 1

    def submit(self) -> int:
        """Hand every queued write to the kernel (which never blocks here: it punts to io-wq).

        Returns 0, or, when the kernel refuses, how many of the last queued
        writes were taken back unsubmitted (with the error logged): those never run.
        """
        while self._pending:
            try:
                done = self._enter(self._pending)
            except OSError as exc:
                log.warning("io_uring_enter refused %d writes: %s", self._pending, exc)
                return self._take_back()
            self._pending -= done
            self.in_flight += done
        return 0

    def _take_back(self) -> int:
        dropped, self._pending = self._pending, 0
        self._sq_tail = (self._sq_tail - dropped) & 0xFFFFFFFF
        _U32.pack_into(self._rings, self._sq_tail_at, self._sq_tail)
        return dropped

    def reap(self) -> list[tuple[int, int]]:
        """Every completion posted so far, oldest first: ``(user_data, result)``.

        ``result`` is the kernel's: bytes written, or ``-errno``.
        """
        rings = self._rings
        tail = _U32.unpack_from(rings, self._cq_tail_at)[0]
        head = self._cq_head
        if head == tail:
            return []
        out: list[tuple[int, int]] = []
        cqes_at, mask, unpack = self._cqes_at, self._cq_mask, _CQE.unpack_from
        while head != tail:
            user_data, result, _flags = unpack(rings, cqes_at + (head & mask) * _CQE.size)
            out.append((user_data, result))
            head = (head + 1) & 0xFFFFFFFF
        self._cq_head = head
        _U32.pack_into(rings, self._cq_head_at, head)
        self.in_flight -= len(out)
        return out

    def close(self) -> None:
        """Unmap and close; the kernel finishes any write still running on its own."""
        if self._closed:
            return
        self._closed = True
        self._sqes.close()
        self._rings.close()
        os.close(self.fd)

    def _enter(self, count: int) -> int:
        """``io_uring_enter(fd, count, 0, 0, NULL, 0)``: submit ``count`` queued writes."""
        number, fd = self._enter_head
        while True:
            result = self._syscall(number, fd, ctypes.c_long(count), _ZERO, _ZERO, None, _ZERO)
            if result >= 0:
                return result
            err = ctypes.get_errno()
            if err != errno.EINTR:
                raise OSError(err, os.strerror(err))

    def _enter_checked(self, number: int, *args: object) -> int:
        wide = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
        while True:
            result = self._syscall(ctypes.c_long(number), *wide)
            if result >= 0:
                return result
            err = ctypes.get_errno()
            if err != errno.EINTR:  # interrupted: again
                raise OSError(err, os.strerror(err))
