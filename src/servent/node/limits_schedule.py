"""``limits_schedule``: rate limits by time of day (slower while the family works, say).

In the config file::

    limits_schedule = [
        {from = "08:00", to = "18:00", download_rate_limit = 500000, upload_rate_limit = 100000},
        {from = "23:00", to = "06:00", upload_rate_limit = 0},
    ]

Times are the machine's local time, ``HH:MM``; a window may run past midnight
(``from`` later than ``to``) and ``from == to`` is the whole day.  Inside a
window its limits replace the node's ``download_rate_limit`` and
``upload_rate_limit`` (a limit it does not name stays the node's; 0 is
unlimited, as everywhere); when windows overlap the first one listed wins.
Outside every window the node's own settings apply.  The node applies the
schedule at every boundary and at least every five minutes (a clock changed
by hand or for daylight saving is caught up).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from servent.errors import ConfigError

MAX_WINDOWS = 48
MINUTES_PER_DAY = 24 * 60
MAX_WAIT = 300.0
"""Seconds between two applications at most, whatever the boundaries say."""
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_RATE_MAX = 1 << 40
_KEYS = frozenset({"from", "to", "download_rate_limit", "upload_rate_limit"})


@dataclass(frozen=True, slots=True)
class LimitsWindow:
    """One window of the schedule; minutes after local midnight."""

    start: int
    end: int
    download_rate_limit: int | None = None
    upload_rate_limit: int | None = None

    def covers(self, minute: int) -> bool:
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= minute < self.end
        return minute >= self.start or minute < self.end

    def as_config(self) -> dict[str, object]:
        """The TOML form (for ``settings()``)."""
        out: dict[str, object] = {"from": _clock(self.start), "to": _clock(self.end)}
        if self.download_rate_limit is not None:
            out["download_rate_limit"] = self.download_rate_limit
        if self.upload_rate_limit is not None:
            out["upload_rate_limit"] = self.upload_rate_limit
        return out


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _minute(key: str, value: object) -> int:
    match = _TIME.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(f"limits_schedule: {key} must be 'HH:MM' (00:00..23:59), got {value!r}")
    return int(match.group(1)) * 60 + int(match.group(2))


def _rate(key: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _RATE_MAX:
        raise ConfigError(f"limits_schedule: {key} must be bytes/s (0 = unlimited), got {value!r}")
    return value


def parse_schedule(value: object) -> tuple[LimitsWindow, ...]:
    """The windows of a ``limits_schedule`` value from TOML or JSON; ConfigError if wrong."""
    if isinstance(value, tuple) and all(isinstance(v, LimitsWindow) for v in value):
        return value
    if not isinstance(value, list | tuple):
        raise ConfigError("limits_schedule: expected a list of {from, to, ...} tables")
    if len(value) > MAX_WINDOWS:
        raise ConfigError(f"limits_schedule: at most {MAX_WINDOWS} windows")
    windows = []
    for entry in value:
        if not isinstance(entry, dict):
            raise ConfigError(f"limits_schedule: each window is a table, got {entry!r}")
        unknown = set(entry) - _KEYS
        if unknown:
            raise ConfigError(f"limits_schedule: unknown keys {sorted(unknown)}")
        down = _rate("download_rate_limit", entry.get("download_rate_limit"))
        up = _rate("upload_rate_limit", entry.get("upload_rate_limit"))
        if down is None and up is None:
            raise ConfigError(
                "limits_schedule: a window needs download_rate_limit or upload_rate_limit"
            )
        start, end = _minute("from", entry.get("from")), _minute("to", entry.get("to"))
        windows.append(LimitsWindow(start, end, down, up))
    return tuple(windows)


def active_window(schedule: Sequence[LimitsWindow], when: datetime) -> LimitsWindow | None:
    """The first window covering ``when`` (local time), or None."""
    minute = when.hour * 60 + when.minute
    return next((w for w in schedule if w.covers(minute)), None)


def scheduled_rates(
    schedule: Sequence[LimitsWindow], when: datetime, download: int, upload: int
) -> tuple[int, int]:
    """The (download, upload) limits in force at ``when``, given the node's own ones."""
    window = active_window(schedule, when)
    if window is None:
        return download, upload
    return (
        download if window.download_rate_limit is None else window.download_rate_limit,
        upload if window.upload_rate_limit is None else window.upload_rate_limit,
    )


def seconds_to_next_boundary(schedule: Sequence[LimitsWindow], when: datetime) -> float:
    """Seconds from ``when`` until the next window starts or ends (at most :data:`MAX_WAIT`)."""
    now = when.hour * 3600 + when.minute * 60 + when.second + when.microsecond / 1e6
    waits = [
        (edge * 60 - now) % (MINUTES_PER_DAY * 60)
        for window in schedule
        for edge in (window.start, window.end)
    ]
    return min([w for w in waits if w > 0] + [MAX_WAIT])


async def follow_schedule(
    schedule: Sequence[LimitsWindow],
    apply: Callable[[], None],
    now: Callable[[], datetime],
    sleep: Callable[[float], Awaitable[None]],
) -> None:
    """Apply the limits now and after each boundary, forever (the caller cancels)."""
    while True:
        apply()
        await sleep(seconds_to_next_boundary(schedule, now()) + 0.001)
