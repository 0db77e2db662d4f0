"""Progress of a torrent that does not run, read from its resume data alone.

Why: a paused torrent used to open its storage to show its progress, and
opening storage creates the (sparse) ``.part`` files of wanted files, so a
torrent added paused left files behind before it ever ran.  The resume record
(in the node's sqlite state) already says which pieces were verified; this
reads it without touching the payload folder.  It shows what the torrent
knew when it stopped: files changed on disk since are found when it runs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from servent.codec.bitfield import Bitfield
from servent.codec.metainfo import Metainfo
from servent.errors import BitfieldError, ResumeDataError
from servent.storage.model import DEFAULT_PRIORITY
from servent.storage.resume import ResumeRecord, ResumeStore
from servent.storage.seed_resume import resume_key

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StoredProgress:
    have_bytes: int
    wanted_bytes: int
    file_progress: tuple[float, ...]


def _file_pieces(metainfo: Metainfo, index: int) -> range:
    entry = metainfo.files[index]
    if entry.pad or entry.length == 0:
        return range(0)
    first = entry.offset // metainfo.piece_length
    last = (entry.offset + entry.length - 1) // metainfo.piece_length
    return range(first, last + 1)


def load_record(store: ResumeStore, metainfo: Metainfo) -> ResumeRecord | None:
    """The torrent's resume record, or None if it has none (or one for another torrent)."""
    key = resume_key(metainfo)
    data = store.load(key)
    if data is None:
        return None
    try:
        record = ResumeRecord.decode(data)
        if (
            record.info_hash.hex() != key
            or record.num_pieces != metainfo.num_pieces
            or record.piece_length != metainfo.piece_length
            or len(record.priorities) != len(metainfo.files)
        ):
            raise ResumeDataError("resume data is for another torrent")
        Bitfield.from_bytes(record.have, metainfo.num_pieces)
    except (ResumeDataError, BitfieldError) as exc:
        log.warning("ignoring resume data of %s: %s", key, exc)
        return None
    return record


def stored_progress(
    store: ResumeStore, metainfo: Metainfo, priorities: Sequence[int] = ()
) -> StoredProgress:
    """Verified and wanted bytes and per-file progress, from the resume record only.

    ``priorities`` (one per file) override the recorded ones, as they do when
    storage opens; without either, every file is wanted.
    """
    record = load_record(store, metainfo)
    count = len(metainfo.files)
    have = Bitfield(metainfo.num_pieces)
    if record is not None:
        have = Bitfield.from_bytes(record.have, metainfo.num_pieces)
    if len(priorities) != count:
        priorities = record.priorities if record is not None else (DEFAULT_PRIORITY,) * count
    wanted: set[int] = set()
    progress: list[float] = []
    for index in range(count):
        pieces = _file_pieces(metainfo, index)
        if priorities[index] > 0:
            wanted.update(pieces)
        done = sum(1 for piece in pieces if piece in have)
        progress.append(done / len(pieces) if pieces else 1.0)
    size = metainfo.total_length
    wanted_bytes = sum(metainfo.piece_payload_size(piece) for piece in wanted)
    have_bytes = sum(metainfo.piece_payload_size(piece) for piece in wanted if piece in have)
    return StoredProgress(min(have_bytes, size), min(wanted_bytes, size), tuple(progress))
