"""Settings and limits of a running node (a mixin of :class:`~servent.node.node.Node`).

Kept apart from the node's torrent life cycle: here are only the rules of
which setting applies at once (rate and connection limits), which waits for
the next start (listening port, encryption), and which belongs in the config
file; every accepted value is validated like the config file and stored.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from servent.errors import NodeError
from servent.node.config import RUNTIME_KEYS, STORED_KEYS, Config
from servent.node.events import NodeEvent, SettingsChanged, TorrentLimitsChanged
from servent.node.limits_schedule import follow_schedule, scheduled_rates
from servent.node.state import StateStore, TorrentRecord
from servent.node.torrent_spec import SwarmLimits

if TYPE_CHECKING:
    from servent.node.running_torrent import RunningTorrent


class NodeSettings:
    """Settings and limits; the state below belongs to ``Node`` (declared for mypy)."""

    config: Config
    _store: StateStore | None
    _records: dict[str, TorrentRecord]
    _running: Callable[[str], RunningTorrent]
    _apply_limits: Callable[[], None]

    @property
    def store(self) -> StateStore:
        raise NotImplementedError

    def _record(self, torrent_id: str) -> TorrentRecord:
        raise NotImplementedError

    def _emit_event(self, event: NodeEvent) -> None:
        raise NotImplementedError

    #: Local wall-clock time for ``limits_schedule`` (tests give a fake one).
    _local_time: Callable[[], datetime] = staticmethod(datetime.now)

    def _start_limits_schedule(self, tasks: set[asyncio.Task[None]]) -> None:
        """Re-apply the limits at each boundary of the schedule (a task of the node's)."""
        if not self.config.limits_schedule:
            return
        follow = follow_schedule(
            self.config.limits_schedule,
            self._apply_limits,
            self._local_time,
            asyncio.sleep,
        )
        task = asyncio.get_running_loop().create_task(follow, name="limits-schedule")
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def _limits(self) -> SwarmLimits:
        download, upload = scheduled_rates(
            self.config.limits_schedule,
            self._local_time(),
            self.config.download_rate_limit,
            self.config.upload_rate_limit,
        )
        return SwarmLimits(
            download_rate_limit=download,
            upload_rate_limit=upload,
            max_connections=self.config.max_connections,
            max_peers_per_torrent=self.config.max_peers_per_torrent,
            max_peers_per_ip=self.config.max_peers_per_ip,
        )

    async def set_limits(
        self,
        torrent_id: str | None = None,
        *,
        download_rate_limit: int | None = None,
        upload_rate_limit: int | None = None,
        max_connections: int | None = None,
        max_peers_per_torrent: int | None = None,
    ) -> None:
        """Change rate and connection limits, node-wide or (rates only) for one torrent.

        Node-wide values are validated like the config file and stored, so they
        survive restarts (flags given at start still win at the next start)."""
        if torrent_id is not None:
            record = self._record(torrent_id)
            if max_connections is not None or max_peers_per_torrent is not None:
                raise NodeError("connection limits are node-wide")
            down = record.download_limit if download_rate_limit is None else download_rate_limit
            up = record.upload_limit if upload_rate_limit is None else upload_rate_limit
            for key, value in (("download_rate_limit", down), ("upload_rate_limit", up)):
                self.config.with_values({key: value})  # validates
            self.store.set_torrent_limits(torrent_id, down, up)
            self._records[torrent_id] = dataclasses.replace(
                record, download_limit=down, upload_limit=up
            )
            self._running(torrent_id).set_rate_limits(down, up)
            self._emit_event(TorrentLimitsChanged(torrent_id, down, up))
            return
        values = {
            k: v
            for k, v in (
                ("download_rate_limit", download_rate_limit),
                ("upload_rate_limit", upload_rate_limit),
                ("max_connections", max_connections),
                ("max_peers_per_torrent", max_peers_per_torrent),
            )
            if v is not None
        }
        self.config = self.config.with_values(values)
        self.store.set_settings(dict(values))
        self._apply_limits()
        self._emit_event(SettingsChanged(dict(values)))

    async def update_settings(self, values: dict[str, object]) -> bool:
        """Change settings from a front end; returns True when a restart is needed.

        Limits apply at once; the listening port and encryption are stored for the
        next start (the peer listener and every torrent were set up with them).
        Other settings belong in the config file and are refused."""
        for key in values:
            if key not in STORED_KEYS:
                raise NodeError(f"{key}: cannot be changed while running (edit the config file)")
        checked = self.config.with_values(values)  # validates every value
        runtime = {k: getattr(checked, k) for k in values if k in RUNTIME_KEYS}
        if runtime:
            await self.set_limits(**runtime)
        later = {k: getattr(checked, k) for k in values if k not in RUNTIME_KEYS}
        if later:
            self.store.set_settings(later)
            self._emit_event(SettingsChanged(dict(later)))
        return any(getattr(checked, k) != getattr(self.config, k) for k in later)

    def settings(self) -> dict[str, object]:
        """Every setting as the node runs it, plus ``pending_restart``: values saved
        through :meth:`update_settings` that the next start applies."""
        values = self.config.public_dict()
        pending: dict[str, object] = {}
        if self._store is not None:
            for key, value in self._store.settings().items():
                later = key in STORED_KEYS and key not in RUNTIME_KEYS
                if later and key not in self.config.flag_keys and value != values.get(key):
                    pending[key] = value
        values["pending_restart"] = pending
        return values
