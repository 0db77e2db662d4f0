"""LEDBAT congestion control (RFC 6817 as used by BEP 29): a window sized by queueing delay.

The controller knows nothing of packets: the connection reports delay
samples, acknowledged bytes, losses and timeouts, and reads ``window``.
Delays are 32-bit microsecond values that include an unknown clock offset;
only differences from the base delay matter, computed modulo 2^32.
"""

from __future__ import annotations

from collections import deque

__all__ = ["DelayHistory", "Ledbat"]

TARGET_US = 100_000
#: Largest window change per RTT at full off-target (BEP 29's MAX_CWND_INCREASE_BYTES_PER_RTT).
GAIN_BYTES_PER_RTT = 3000
#: One-minute buckets of minimum delay; the base is the minimum of these and the current one.
HISTORY_BUCKETS = 2
BUCKET_SECONDS = 60.0
#: Recent samples whose minimum is the current delay (filters single spikes).
CURRENT_SAMPLES = 3
MAX_WINDOW = 4 << 20
_WRAP = 1 << 32
_HALF = 1 << 31


def _signed(value: int) -> int:
    """A 32-bit difference as a signed integer."""
    return ((value + _HALF) % _WRAP) - _HALF


class DelayHistory:
    """Base delay over the last 2-3 minutes and the current delay, both in µs."""

    def __init__(self) -> None:
        self._base: int | None = None  # minimum of the current bucket (raw 32-bit)
        self._buckets: deque[int] = deque(maxlen=HISTORY_BUCKETS)
        self._bucket_started: float | None = None
        self._recent: deque[int] = deque(maxlen=CURRENT_SAMPLES)

    def add(self, sample: int, now: float) -> None:
        if self._bucket_started is None:
            self._bucket_started = now
        elif now - self._bucket_started >= BUCKET_SECONDS:
            if self._base is not None:
                self._buckets.append(self._base)
            self._base = None
            self._bucket_started = now
        if self._base is None or _signed(sample - self._base) < 0:
            self._base = sample
        self._recent.append(sample)

    @property
    def base(self) -> int | None:
        base = self._base
        for bucket in self._buckets:
            if base is None or _signed(bucket - base) < 0:
                base = bucket
        return base

    def queueing_delay(self) -> int | None:
        """The smallest recent sample above the base, in µs (``None`` before any sample)."""
        base = self.base
        if base is None or not self._recent:
            return None
        return max(0, min(_signed(sample - base) for sample in self._recent))


class Ledbat:
    """The congestion window in bytes, driven by queueing delay and loss."""

    def __init__(
        self, mss: int, *, target_us: int = TARGET_US, gain_bytes: int = GAIN_BYTES_PER_RTT
    ) -> None:
        self.mss = mss
        self.target_us = target_us
        self.gain_bytes = gain_bytes
        self.min_window = 2 * mss
        self.max_window = MAX_WINDOW
        self.window: float = 4 * mss
        self.slow_start = True
        self.delays = DelayHistory()
        self.last_delay_us = 0

    def set_mss(self, mss: int) -> None:
        """The packet size changed (path MTU search): the minimum window is two packets."""
        self.mss = mss
        self.min_window = 2 * mss
        self.window = max(self.window, self.min_window)

    def on_delay_sample(self, sample: int, now: float) -> None:
        self.delays.add(sample, now)

    def on_ack(self, acked: int, bytes_in_flight: int, rtt_us: int | None) -> None:
        """Grow or shrink for ``acked`` bytes; ``bytes_in_flight`` as before the ack."""
        delay = self.delays.queueing_delay()
        if delay is None or acked <= 0:
            return
        if rtt_us is not None:
            delay = min(delay, rtt_us)
        self.last_delay_us = delay
        off_target = (self.target_us - delay) / self.target_us
        window_limited = bytes_in_flight + self.mss >= self.window
        if off_target > 0 and not window_limited:
            return  # application-limited: do not inflate a window that is not used
        if self.slow_start:
            if delay * 2 > self.target_us:
                self.slow_start = False
            else:
                self.window = min(self.window + acked, self.max_window)
                return
        change = self.gain_bytes * off_target * acked / self.window
        self.window = max(self.min_window, min(self.window + change, self.max_window))

    def on_loss(self) -> None:
        self.slow_start = False
        self.window = max(self.min_window, self.window / 2)

    def on_timeout(self) -> None:
        self.slow_start = False
        self.window = self.min_window
