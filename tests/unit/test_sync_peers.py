"""The schedule on which a download with no peers asks the DHT again (a fake clock)."""

from __future__ import annotations

from servent.node.sync_peers import PeerReasks

V6, V7 = b"6" * 20, b"7" * 20


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _asks(reasks: PeerReasks, clock: Clock, until: float, info_hash: bytes = V6) -> list[float]:
    """The seconds (from now) at which a download with no peers, checked every 2 s, asks."""
    start, asked = clock.now, []
    while clock.now - start <= until:
        if reasks.due("share", info_hash, 0):
            asked.append(clock.now - start)
        clock.now += 2.0
    return asked


def test_no_peers_asks_after_10_s_then_backs_off_to_60_s() -> None:
    clock = Clock()
    assert _asks(PeerReasks(clock=clock), clock, 300) == [10, 30, 70, 130, 190, 250]


def test_a_peer_resets_the_schedule() -> None:
    clock = Clock()
    reasks = PeerReasks(clock=clock)
    assert _asks(reasks, clock, 40) == [10, 30]
    assert not reasks.due("share", V6, 3)
    assert _asks(reasks, clock, 12) == [10]  # from the first interval again


def test_a_new_version_starts_its_own_schedule() -> None:
    clock = Clock()
    reasks = PeerReasks(clock=clock)
    assert _asks(reasks, clock, 72) == [10, 30, 70]
    assert _asks(reasks, clock, 12, V7) == [10]
    assert not reasks.due("other share", V6, 0)  # each share has its own
