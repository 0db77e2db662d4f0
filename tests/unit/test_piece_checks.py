"""PieceChecks: a verified piece is stored, then told to the core, its waiters and progress."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from servent.net.piece_checks import PieceChecks
from servent.proto.swarm import PeerIdentity, VerifyPiece
from servent.storage.resume import MemoryResumeStore
from servent.storage.torrent_storage import TorrentStorage
from storage_torrents import make_metainfo, piece_bytes, random_files

PIECE = 16384


class RecordingCore:
    """Stands in for SwarmCore: what the checks told it, in order."""

    def __init__(self) -> None:
        self.told: list[tuple[str, int | None, bool | None]] = []

    def piece_checked(
        self, index: int, data: bytearray, sources: dict[int, PeerIdentity], ok: bool, now: float
    ) -> None:
        self.told.append(("checked", index, ok))

    def piece_abandoned(self, data: bytearray) -> None:
        self.told.append(("abandoned", None, None))


async def test_progress_waiters_wake_at_a_verified_piece_only_and_a_stopping_torrent_abandons(
    tmp_path: Path,
) -> None:
    files = random_files(random.Random(5), [3 * PIECE])
    meta = make_metainfo(files, PIECE)
    core = RecordingCore()
    afters: list[int] = []
    async with TorrentStorage(meta, tmp_path, resume_store=MemoryResumeStore()) as storage:
        checks = PieceChecks(
            core, storage, after=lambda: afters.append(1), failed=lambda exc: None,  # type: ignore[arg-type]
            loop=asyncio.get_running_loop(),
        )  # fmt: skip
        good = bytearray(piece_bytes(meta, files, 1))
        bad = bytearray(good)
        bad[0] ^= 1
        waiting = asyncio.ensure_future(checks.progressed.wait())
        outcome = checks.outcome(1)
        async with asyncio.TaskGroup() as tasks:
            checks.start(VerifyPiece(1, bad, {}), tasks)
        assert core.told == [("checked", 1, False)] and outcome.result() is False
        assert not waiting.done() and not storage.have_piece(1)  # a failed piece is no progress
        second = checks.progressed  # the same event until a piece passes
        async with asyncio.TaskGroup() as tasks:
            checks.start(VerifyPiece(1, good, {}), tasks)
        assert core.told[-1] == ("checked", 1, True) and storage.have_piece(1)
        await asyncio.wait_for(waiting, 10)
        assert second.is_set() and not checks.progressed.is_set()  # a fresh one for the next
        checks.start(VerifyPiece(2, bytearray(piece_bytes(meta, files, 2)), {}), None)
        assert core.told[-1] == ("abandoned", None, None) and not storage.have_piece(2)
    assert afters == [1, 1]
