"""Positional I/O on a bounded set of cached file descriptors, safe across threads.

Files are addressed by a *key* (any hashable; a ``Path`` key is its own path)
whose current path is registered with :meth:`FilePool.set_path`, so a file can be
renamed (``name.part`` -> ``name``) while other threads use it: they keep
addressing the key and never reopen a stale path.

Payload I/O runs in worker threads, so the pool never moves a file offset: it
uses ``os.pread``/``os.pwrite`` only, and any number of threads may share one
descriptor.  At most ``max_open`` descriptors stay open (least recently used
closed first); a descriptor in use by another thread is closed only when that
thread is done with it.  Files are opened with ``O_NOFOLLOW`` so a symlink
planted at a payload path is refused rather than followed.

``OSError`` becomes a :class:`~servent.errors.StorageError` subclass with a
message naming the file, so the front end prints one clear line.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path

from servent.errors import DiskFullError, StorageError, StoragePermissionError

log = logging.getLogger(__name__)

_DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NO_PERMISSION = {errno.EACCES, errno.EPERM, errno.EROFS}


def storage_error(exc: OSError, action: str, path: Path | str) -> StorageError:
    """A clear :class:`StorageError` for an ``OSError`` raised while ``action``."""
    reason = exc.strerror or str(exc)
    if exc.errno in _DISK_FULL:
        return DiskFullError(f"disk full while {action} {path}: {reason}")
    if exc.errno in _NO_PERMISSION:
        return StoragePermissionError(f"cannot write {path} ({action}): {reason}")
    if exc.errno == errno.ELOOP:
        return StorageError(f"refusing to follow a symlink at {path}")
    return StorageError(f"error while {action} {path}: {reason}")


class _Handle:
    __slots__ = ("closing", "fd", "users", "writable")

    def __init__(self, fd: int, writable: bool) -> None:
        self.fd = fd
        self.writable = writable
        self.users = 0
        self.closing = False


class FilePool:
    """Open-on-demand descriptors for payload files, addressed by key."""

    def __init__(self, max_open: int = 64) -> None:
        if max_open < 1:
            raise ValueError("max_open must be >= 1")
        self.max_open = max_open
        self._lock = threading.Lock()
        self._handles: OrderedDict[Hashable, _Handle] = OrderedDict()
        self._paths: dict[Hashable, Path] = {}
        self.opens = 0  # statistics: descriptors opened so far

    # -- paths --------------------------------------------------------------

    def set_path(self, key: Hashable, path: Path) -> None:
        """Register where file ``key`` lives (used at its next open)."""
        with self._lock:
            self._paths[key] = path

    def path_of(self, key: Hashable) -> Path:
        with self._lock:
            return self._path_locked(key)

    def _path_locked(self, key: Hashable) -> Path:
        path = self._paths.get(key)
        if path is not None:
            return path
        if isinstance(key, Path):
            return key
        raise KeyError(f"no path registered for file {key!r}")

    # -- I/O ----------------------------------------------------------------

    def pread(self, key: Hashable, offset: int, length: int) -> bytes:
        """Read exactly ``length`` bytes; bytes past the end of file read as zeros."""
        with self._use(key, writable=False) as (fd, path):
            try:
                data = os.pread(fd, length, offset)
                while len(data) < length:
                    more = os.pread(fd, length - len(data), offset + len(data))
                    if not more:
                        data += bytes(length - len(data))
                        break
                    data += more
            except OSError as exc:
                raise storage_error(exc, "reading", path) from exc
        return data

    def pwrite(self, key: Hashable, offset: int, data: bytes | memoryview) -> None:
        """Write all of ``data`` at ``offset`` (the file is created if missing)."""
        view = memoryview(data)
        with self._use(key, writable=True) as (fd, path):
            try:
                while view:
                    written = os.pwrite(fd, view, offset)
                    view = view[written:]
                    offset += written
            except OSError as exc:
                raise storage_error(exc, "writing", path) from exc

    def hold_open(self, key: Hashable) -> tuple[int, Path, object] | None:
        """The open writable descriptor of ``key`` kept open for the caller, or ``None``.

        For writes that outlive a call (io_uring): the caller passes the third
        item to :meth:`release` when the kernel is done.  Never opens a file,
        so it never blocks; ``None`` means "open it with :meth:`hold` in a thread".
        """
        with self._lock:
            handle = self._handles.get(key)
            if handle is None or not handle.writable:
                return None
            self._handles.move_to_end(key)
            handle.users += 1
            path = self._paths.get(key)
            return handle.fd, path if path is not None else self._path_locked(key), handle

    def hold(self, key: Hashable) -> tuple[int, Path, object]:
        """Open ``key`` for writing if needed and keep it open until :meth:`release`."""
        handle, path = self._acquire(key, writable=True)
        return handle.fd, path, handle

    def release(self, token: object) -> None:
        """Give back a descriptor kept by :meth:`hold_open` or :meth:`hold`."""
        assert isinstance(token, _Handle)
        with self._lock:  # (_release, inlined: once per io_uring piece)
            token.users -= 1
            if token.closing and token.users == 0:
                self._close_fd(token)

    def allocate(self, key: Hashable, size: int) -> None:
        """Create ``path`` sparse with ``size`` bytes (no blocks are reserved)."""
        with self._use(key, writable=True) as (fd, path):
            try:
                if os.fstat(fd).st_size < size:
                    os.ftruncate(fd, size)
            except OSError as exc:
                raise storage_error(exc, "allocating", path) from exc

    def sync(self, key: Hashable) -> None:
        """Flush the file's data to disk if it is open for writing."""
        with self._lock:
            handle = self._handles.get(key)
            if handle is None or not handle.writable:
                return
            handle.users += 1
            path = self._path_locked(key)
        try:
            os.fdatasync(handle.fd)
        except OSError as exc:
            raise storage_error(exc, "syncing", path) from exc
        finally:
            self._release(handle)

    def rename(self, key: Hashable, new: Path) -> None:
        """Move file ``key`` to ``new``; an open descriptor follows (POSIX keeps the inode)."""
        with self._lock:
            old = self._path_locked(key)
            try:
                os.replace(old, new)
            except OSError as exc:
                raise storage_error(exc, "renaming", old) from exc
            self._paths[key] = new

    def close(self, key: Hashable) -> None:
        with self._lock:
            handle = self._handles.pop(key, None)
            if handle is not None:
                self._retire(handle)

    def close_all(self) -> None:
        with self._lock:
            handles = list(self._handles.values())
            self._handles.clear()
            for handle in handles:
                self._retire(handle)

    def open_count(self) -> int:
        with self._lock:
            return len(self._handles)

    # -- internals ------------------------------------------------------------

    @contextmanager
    def _use(self, key: Hashable, *, writable: bool) -> Iterator[tuple[int, Path]]:
        handle, path = self._acquire(key, writable)
        try:
            yield handle.fd, path
        finally:
            self._release(handle)

    def _acquire(self, key: Hashable, writable: bool) -> tuple[_Handle, Path]:
        with self._lock:
            path = self._path_locked(key)
            handle = self._handles.get(key)
            if handle is not None and (handle.writable or not writable):
                self._handles.move_to_end(key)
                handle.users += 1
                return handle, path
            if handle is not None:  # reopen read-only descriptor for writing
                del self._handles[key]
                self._retire(handle)
            flags = os.O_CLOEXEC | os.O_NOFOLLOW
            flags |= (os.O_RDWR | os.O_CREAT) if writable else os.O_RDONLY
            try:
                fd = os.open(path, flags, 0o644)
            except OSError as exc:
                raise storage_error(exc, "opening", path) from exc
            self.opens += 1
            handle = _Handle(fd, writable)
            handle.users = 1
            self._handles[key] = handle
            while len(self._handles) > self.max_open:
                _, oldest = self._handles.popitem(last=False)
                self._retire(oldest)
            return handle, path

    def _release(self, handle: _Handle) -> None:
        with self._lock:
            handle.users -= 1
            if handle.closing and handle.users == 0:
                self._close_fd(handle)

    def _retire(self, handle: _Handle) -> None:
        """Close now if idle, else when its last user releases it (lock held)."""
        handle.closing = True
        if handle.users == 0:
            self._close_fd(handle)

    @staticmethod
    def _close_fd(handle: _Handle) -> None:
        try:
            os.close(handle.fd)
        except OSError as exc:  # pragma: no cover - close rarely fails
            log.warning("closing fd %d failed: %s", handle.fd, exc)
        handle.fd = -1
