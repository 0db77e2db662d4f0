"""How many block requests to keep outstanding with one peer.

A fixed queue depth either starves fast peers (the pipe empties between a
block and the next request) or hoards blocks at slow ones (endgame waits on
them).  The depth that keeps a peer busy is its bandwidth-delay product:
``rate x latency / block_size``.  :class:`RequestPipeline` measures both per
peer — the rate as an exponentially weighted average over short windows, the
latency as the smallest request-to-block delay seen recently (queueing at the
peer inflates the others) — and adds headroom so the rate can grow:

    depth = clamp(ceil(rate x max(2 x latency, min_queue_time) / block_size) + 2,
                  min_depth, max_depth)

Pure: the caller passes ``now``.  The session asks :meth:`RequestPipeline.depth`
and tops the peer up with ``PiecePicker.pick(peer, top_up(depth, outstanding))``:
requests go out in batches of at least a quarter of the depth, because every
top-up is one write on our side and one wake-up on the peer's, which at
hundreds of MiB/s cost more CPU than the requests themselves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: A top-up waits until this fraction of the queue depth is missing.
TOP_UP_FRACTION = 4


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    block_size: int = 16384
    min_depth: int = 2
    max_depth: int = 512
    #: Depth before any measurement.
    initial_depth: int = 16
    #: Floor for the time covered by the queue, against timer and scheduling jitter.
    min_queue_time: float = 0.25
    #: Length of one rate sample window.
    rate_window: float = 0.5
    #: Before the first window closes, estimate the rate from this much traffic time.
    first_sample: float = 0.05
    #: Weight of a new rate sample in the average.
    rate_gain: float = 0.5
    #: The latency minimum is forgotten after this long (routes and load change).
    latency_memory: float = 10.0


class RequestPipeline:
    """Per-peer rate and latency estimate that yields a request queue depth."""

    def __init__(self, now: float, config: PipelineConfig | None = None) -> None:
        self.config = config or PipelineConfig()
        self.rate = 0.0  # bytes per second, smoothed
        self.latency: float | None = None
        self._window_start = now
        self._window_bytes = 0
        self._min_latency: float | None = None
        self._previous_min: float | None = None
        self._latency_epoch = now
        self.total_bytes = 0
        # depth() asked once per read: its last answer, exact until the window
        # rolls (the rate changes) or a latency sample changes the minimum.
        self._depth = self.config.initial_depth
        self._depth_until = -math.inf

    def on_block(self, size: int, now: float, requested_at: float | None = None) -> None:
        """A block of ``size`` bytes arrived; ``requested_at`` is when we asked for it."""
        # Runs once per received block: the common case is two additions and two tests.
        self.total_bytes += size
        self._window_bytes += size
        if now - self._window_start >= self.config.rate_window:
            self._roll_rate(now)
        if requested_at is not None and now >= requested_at:
            delay = now - requested_at
            minimum = self._min_latency
            if (
                minimum is None
                or delay < minimum
                or now - self._latency_epoch >= self.config.latency_memory
            ):
                self._observe_latency(delay, now)

    def _roll_rate(self, now: float) -> None:
        elapsed = now - self._window_start
        if elapsed < self.config.rate_window:
            return
        sample = self._window_bytes / elapsed
        self._depth_until = -math.inf
        gain = self.config.rate_gain
        self.rate = sample if self.rate == 0.0 else gain * sample + (1 - gain) * self.rate
        self._window_start = now
        self._window_bytes = 0

    def _observe_latency(self, delay: float, now: float) -> None:
        # Runs once per received block: recompute only when a minimum changes.
        self._depth_until = -math.inf
        if now - self._latency_epoch >= self.config.latency_memory:
            self._previous_min = self._min_latency
            self._min_latency = None
            self._latency_epoch = now
        elif self._min_latency is not None and delay >= self._min_latency:
            return
        if self._min_latency is None or delay < self._min_latency:
            self._min_latency = delay
        previous = self._previous_min
        self.latency = delay if previous is None else min(self._min_latency, previous)

    def current_rate(self, now: float) -> float:
        """The smoothed rate, decayed when the peer has gone quiet."""
        self._roll_rate(now)
        elapsed = now - self._window_start
        if self.rate == 0.0:
            # No whole window yet: a first estimate, so a fast peer does not sit
            # at the initial depth (and top up a few requests at a time) for
            # half a second.  It undercounts (the window began before the first
            # request), which only makes the queue shallower.
            if elapsed >= self.config.first_sample and self._window_bytes:
                return self._window_bytes / elapsed
            return 0.0
        if elapsed > 2 * self.config.rate_window:
            return min(self.rate, self._window_bytes / elapsed)
        return self.rate

    def depth(self, now: float) -> int:
        """Requests to keep outstanding with this peer now."""
        if now < self._depth_until:
            return self._depth
        config = self.config
        rate = self.current_rate(now)
        if rate <= 0.0 or self.latency is None:
            return config.initial_depth
        horizon = max(2 * self.latency, config.min_queue_time)
        wanted = math.ceil(rate * horizon / config.block_size) + 2
        self._depth = depth = max(config.min_depth, min(config.max_depth, wanted))
        if self.rate:
            # Nothing it depends on moves before the window's end (no roll, no decay)
            # unless a latency sample arrives, which resets this.  (Before the first
            # whole window the estimate moves with every block: not remembered.)
            self._depth_until = self._window_start + config.rate_window
        return depth


def top_up(depth: int, outstanding: int) -> int:
    """How many requests to send now to keep ``depth`` outstanding; 0 to wait.

    An empty queue is always refilled; otherwise only once at least
    ``depth // TOP_UP_FRACTION`` requests are missing, so the queue stays
    above three quarters of its depth (the depth formula's headroom covers it).
    """
    want = depth - outstanding
    if want <= 0:
        return 0
    if outstanding and want < depth // TOP_UP_FRACTION:
        return 0
    return want
