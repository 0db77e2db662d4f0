"""Creating a torrent to seed files in place, with resume data that says they are verified.

Why: creating a torrent hashes every byte; opening its storage without resume
data would hash every byte again (a full recheck) before the first upload.
The creation already proved each piece, so a :class:`ResumeRecord` with every
piece verified, keyed like :class:`~servent.storage.torrent_storage.TorrentStorage`
keys it, lets storage open at once.

Safety: each file's ``(size, mtime_ns)`` is taken *before* hashing.  A file
that changes while (or after) it is hashed no longer matches its recorded
state, so storage verifies that file's pieces again on open, as it does for
any file touched behind its back.
"""

from __future__ import annotations

import os
from pathlib import Path

from servent.codec.bitfield import Bitfield
from servent.codec.metainfo.build import TorrentOptions
from servent.codec.metainfo.model import Metainfo
from servent.storage.model import DEFAULT_PRIORITY, StorageMetainfo
from servent.storage.resume import MISSING, ResumeRecord
from servent.storage.torrent_creator import create_torrent, scan_payload

FileStates = dict[tuple[str, ...], tuple[int, int]]
"""``(size, mtime_ns)`` by the file's path in the torrent (``(name, ...)``)."""


def resume_key(metainfo: StorageMetainfo) -> str:
    """The key storage keeps the torrent's resume data under (hex of its info-hash)."""
    info_hash = metainfo.info_hash_v1 or metainfo.info_hash_v2
    if info_hash is None:
        raise ValueError("the torrent has no info-hash")
    return info_hash.hex()


def payload_states(path: Path) -> FileStates:
    """The state of every file that a torrent of ``path`` would hold, as storage records it."""
    name, found, single = scan_payload(path)
    states: FileStates = {}
    for source, disk_path in found:
        info = disk_path.lstat()
        key = source.path if single else (name, *source.path)
        states[key] = (info.st_size, info.st_mtime_ns)
    return states


def seeding_record(metainfo: StorageMetainfo, states: FileStates) -> ResumeRecord:
    """Every piece verified, against the file states seen before the pieces were hashed."""
    file_states = tuple(
        MISSING if f.pad or f.length == 0 else states.get(tuple(f.path), MISSING)
        for f in metainfo.files
    )
    return ResumeRecord(
        info_hash=bytes.fromhex(resume_key(metainfo)),
        piece_length=metainfo.piece_length,
        num_pieces=metainfo.num_pieces,
        have=Bitfield(metainfo.num_pieces, all_set=True).to_bytes(),
        file_states=file_states,
        priorities=(DEFAULT_PRIORITY,) * len(metainfo.files),
    )


def create_seeding_torrent(
    path: str | os.PathLike[str], *, options: TorrentOptions | None = None
) -> tuple[Metainfo, ResumeRecord]:
    """A hybrid torrent of ``path`` and the resume record to seed it from ``path``'s parent.

    Save the record (``store.save(resume_key(metainfo), record.encode())``) in
    the store the storage will open with, before opening it.
    """
    root = Path(path)
    states = payload_states(root)
    metainfo = create_torrent(root, options=options)
    return metainfo, seeding_record(metainfo, states)
