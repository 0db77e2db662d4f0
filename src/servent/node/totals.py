"""The node's transfer totals: this session's and all time, independent of torrents.

Why not sum the torrents' counters: a removed torrent took its bytes with it,
so ``servent status`` totals dropped.  Instead each torrent's cumulative
counters are watched and only their growth is added to the node's totals; the
growth is also added to the state database now and then (and when the node
closes), so the all-time totals survive restarts and a kill -9 loses at most
the last few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from servent.node.state import StateStore

DOWNLOADED = "downloaded"
UPLOADED = "uploaded"


@dataclass(frozen=True, slots=True)
class Totals:
    """Payload bytes moved by the node: since it started and since it was first run."""

    downloaded: int
    uploaded: int
    all_time_downloaded: int
    all_time_uploaded: int


class TransferTotals:
    """Folds per-torrent counters (which reset when a torrent restarts) into node totals."""

    def __init__(self, store: StateStore) -> None:
        stored = store.totals()
        self._stored_down = stored.get(DOWNLOADED, 0)
        self._stored_up = stored.get(UPLOADED, 0)
        self._seen: dict[str, tuple[int, int]] = {}
        self.downloaded = 0
        self.uploaded = 0
        self._unsaved_down = 0
        self._unsaved_up = 0

    def observe(self, torrent_id: str, downloaded: int, uploaded: int) -> None:
        """A torrent's counters as they are now; their growth since last time counts."""
        last_down, last_up = self._seen.get(torrent_id, (0, 0))
        # A counter below its last value belongs to a restarted torrent: it counts from 0.
        grown_down = downloaded - last_down if downloaded >= last_down else downloaded
        grown_up = uploaded - last_up if uploaded >= last_up else uploaded
        self._seen[torrent_id] = (downloaded, uploaded)
        self.downloaded += grown_down
        self.uploaded += grown_up
        self._unsaved_down += grown_down
        self._unsaved_up += grown_up

    def forget(self, torrent_id: str) -> None:
        """The torrent is gone (observe it one last time first); its bytes stay counted."""
        self._seen.pop(torrent_id, None)

    def save(self, store: StateStore) -> None:
        """Add what grew since the last save to the all-time totals in the database."""
        if not (self._unsaved_down or self._unsaved_up):
            return
        store.add_totals({DOWNLOADED: self._unsaved_down, UPLOADED: self._unsaved_up})
        self._stored_down += self._unsaved_down
        self._stored_up += self._unsaved_up
        self._unsaved_down = self._unsaved_up = 0

    def snapshot(self) -> Totals:
        return Totals(
            downloaded=self.downloaded,
            uploaded=self.uploaded,
            all_time_downloaded=self._stored_down + self._unsaved_down,
            all_time_uploaded=self._stored_up + self._unsaved_up,
        )
