"""Which of a torrent's files the node created, and deleting only those.

Why: "remove with data" must never reach the user's own files.  A shared
folder, or data that was in place when a torrent was added, is the user's;
only files servent itself downloaded are recorded as created (in the state
database, per torrent) and only those are ever deleted.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from servent.node.state import TorrentRecord
from servent.node.status import RemoveResult, TorrentId
from servent.storage.payload_removal import delete_created_files, existing_file_indexes

if TYPE_CHECKING:
    from servent.codec.metainfo import Metainfo

log = logging.getLogger(__name__)


def files_to_create(save_path: Path, metainfo: Metainfo) -> tuple[int, ...]:
    """Indexes of the files servent will create: those not already in ``save_path``."""
    existing = existing_file_indexes(save_path, metainfo.files)
    return tuple(i for i, f in enumerate(metainfo.files) if not f.pad and i not in existing)


def delete_created_data(record: TorrentRecord, metainfo: Metainfo | None) -> RemoveResult:
    """Delete what servent downloaded for ``record``; keep everything else, saying why."""
    torrent_id = TorrentId(record.id)
    if metainfo is None:
        why_not = "its metadata never arrived, so servent downloaded nothing; nothing deleted"
        return RemoveResult(torrent_id, data_deleted=False, reason=why_not)
    if record.created_files is None:
        why_not = "servent does not know which files it created (an older record); nothing deleted"
        return RemoveResult(torrent_id, data_deleted=False, reason=why_not)
    if not record.created_files:
        why_not = "its files were there before servent (a share or existing data); nothing deleted"
        return RemoveResult(torrent_id, data_deleted=False, reason=why_not)
    removal = delete_created_files(Path(record.save_path), metainfo.files, record.created_files)
    for path, why in removal.kept:
        log.warning("kept %s: %s", path, why)
    reason: str | None = None
    if removal.kept:
        reason = f"{len(removal.kept)} file(s) kept (see the node's log)"
    elif not removal.deleted:
        reason = "none of the files servent downloaded were on disk"
    return RemoveResult(
        torrent_id,
        data_deleted=bool(removal.deleted),
        reason=reason,
        deleted_files=len(removal.deleted),
        kept_files=len(removal.kept),
    )
