"""Payload files on disk: their names, folders and sparse allocation (a TorrentStorage mixin).

Why apart from :mod:`~servent.storage.torrent_storage`: this is the part that
decides what each file is called (``<name>`` only when complete, else
``<name>.part``), creates folders without ever leaving the download folder,
and reads the files' on-disk state for resume checks; the storage class keeps
the piece I/O.  :class:`PayloadFiles` only makes sense as a base of
:class:`~servent.storage.torrent_storage.TorrentStorage`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from servent.codec.bitfield import Bitfield
from servent.codec.piece_layout import PieceLayout
from servent.storage.file_pool import FilePool, storage_error
from servent.storage.kept_versions import keep_version
from servent.storage.model import FileState, StorageMetainfo
from servent.storage.paths import ensure_inside, relative_paths, safe_path
from servent.storage.resume import MISSING

__all__ = ["PayloadFiles"]

log = logging.getLogger("servent.storage.torrent_storage")


class PayloadFiles:
    """Names, folders, allocation and on-disk state of the payload files."""

    metainfo: StorageMetainfo
    download_dir: Path
    layout: PieceLayout
    _files: list[FileState]
    _have: Bitfield
    _pool: FilePool
    _root: Path

    def _prepare_files(self) -> None:
        try:
            self.download_dir.mkdir(parents=True, exist_ok=True)
            root = self.download_dir.resolve(strict=True)
        except OSError as exc:
            raise storage_error(exc, "creating the download folder", self.download_dir) from exc
        if not os.access(root, os.W_OK):
            raise storage_error(
                PermissionError(13, "permission denied"), "opening the folder", root
            )
        self._root = root
        names = relative_paths(self.metainfo.files)
        for index, (entry, rel) in enumerate(zip(self.metainfo.files, names, strict=True)):
            final = safe_path(root, rel)
            f = FileState(final, entry.length, entry.pad, self.layout.file_pieces(index))
            self._files.append(f)
            if f.real:
                ensure_inside(root, f.part)

    def _disk_states(self) -> list[tuple[int, int]]:
        states: list[tuple[int, int]] = []
        for f in self._files:
            state = MISSING
            if f.real:
                for candidate in (f.part, f.final):
                    try:
                        st = candidate.lstat()
                    except FileNotFoundError:
                        continue
                    state = (st.st_size, st.st_mtime_ns)
                    break
            states.append(state)
        return states

    def _existing_path(self, f: FileState) -> Path | None:
        for candidate in (f.part, f.final):
            if candidate.exists():
                return candidate
        return None

    def _count_missing(self) -> None:
        have = self._have
        for f in self._files:
            f.missing = sum(1 for p in f.pieces if p not in have) if f.real else 0

    def _reconcile_names_and_allocate(self) -> None:
        """Give every file the name its state deserves; create wanted files sparse."""
        for index, f in enumerate(self._files):
            if not f.real:
                if f.length == 0 and not f.pad and f.priority > 0 and not f.final.exists():
                    self._make_parent(f.final)
                    f.final.touch()
                continue
            existing = self._existing_path(f)
            target = f.final if f.missing == 0 else f.part
            self._pool.set_path(index, existing or target)
            f.created = existing is not None or f.priority > 0
            if existing is not None and existing != target:
                if existing == f.final and target == f.part and not f.final.is_symlink():
                    # Pieces will be written into a file that is not (or no longer) the
                    # torrent's: its content as it was is kept first.
                    keep_version(self._root, f.final)
                self._pool.rename(index, target)
                if target == f.part:
                    log.warning("%s did not verify completely; renamed to .part", f.final)
            if existing is None and f.priority > 0:
                self._make_parent(target)
                self._pool.allocate(index, f.length)

    def _make_parent(self, path: Path) -> None:
        ensure_inside(self._root, path)  # before mkdir: never create folders outside
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, "creating the folder", path.parent) from exc
        ensure_inside(self._root, path)

    def _refresh_paths(self) -> None:
        for index, f in enumerate(self._files):
            if f.real:
                existing = self._existing_path(f)
                self._pool.set_path(index, existing or f.part)
