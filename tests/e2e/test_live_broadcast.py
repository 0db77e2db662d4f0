"""A live broadcast on loopback: ``servent live -`` on a daemon, 20 viewers, signed pieces.

The broadcaster is a real daemon fed by the real CLI (``servent live -``);
two viewers are daemons playing through ``servent stream LIVEKEY --json`` and
its HTTP URL; 18 are light in-process participants speaking the same protocol
(:class:`servent.testing.live_nodes.LiveNode`), the last joining half-way.
Checked: every viewer gets every byte from where it started to the end,
equal to the source, each within 10 s of being written; the broadcaster
uploaded at most 3x what it wrote; the late viewer started at the live
edge.  A tampered piece is refused (the stream is dropped, the piece never
kept or passed on).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from polling import wait_for
from servent.proto.live import LivePiece
from servent.testing.live_nodes import LiveNode
from servent.testing.live_scenario import LiveRunConfig, run_live

pytestmark = pytest.mark.e2e


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


async def test_twenty_viewers_get_every_piece_within_ten_seconds(tmp_path: Path) -> None:
    result = await run_live(LiveRunConfig(tmp_path, light_viewers=18, viewer_daemons=2))
    assert len(result.viewers) == 20
    latencies = [delay for viewer in result.viewers for delay in viewer.latencies]
    print(
        f"latency write -> viewer over {len(latencies)} arrivals: "
        f"p50 {quantile(latencies, 0.5):.3f} s, p95 {quantile(latencies, 0.95):.3f} s, "
        f"max {max(latencies):.3f} s"
    )
    for viewer in result.viewers:
        assert viewer.complete, f"{viewer.name} did not get the end of the broadcast"
        assert not viewer.missing, f"{viewer.name} lacks pieces {viewer.missing}"
        assert viewer.matches, f"{viewer.name}: bytes differ from the source"
        assert viewer.latencies and max(viewer.latencies) < 10.0, viewer.name
    daemons = [v for v in result.viewers if v.name.startswith("daemon")]
    assert len(daemons) == 2
    broadcaster = result.broadcaster
    assert broadcaster["ended"] and broadcaster["bytes_written"] == len(result.source)
    assert broadcaster["bytes_up"] <= 3 * broadcaster["bytes_written"]
    # The late viewer started at the edge the broadcaster had when it joined, not before.
    assert result.late_edge_at_join is not None and result.late_first_index is not None
    assert result.late_edge_at_join <= result.late_first_index <= result.late_edge_at_join + 10
    late = next(v for v in result.viewers if v.name == "late")
    assert late.first_offset is not None and late.first_offset > 0


async def test_a_tampered_piece_is_refused_and_its_sender_dropped() -> None:
    async with LiveNode() as broadcaster, LiveNode() as forger, LiveNode() as viewer:
        session = broadcaster.live.broadcast("tamper")
        key = broadcaster.live.live_key(session.topic)
        broadcaster.live.publish(session.topic, b"genuine" * 100)
        relay = forger.live.watch(key)
        await wait_for(lambda: 0 in relay.pieces, "the forger has piece 0")
        real = relay.pieces[0]
        relay.pieces[0] = LivePiece(0, b"tampered" * 100, real.signature)  # signature kept
        assert forger.address is not None
        # The viewer knows only the forger: its key without the broadcaster's address.
        watched = viewer.live.watch(key.split("@")[0] + f"@{forger.address[0]}:{forger.address[1]}")
        await wait_for(lambda: watched.bad_pieces == 1, "the viewer counted a bad piece")
        kept = watched.pieces.get(0)
        assert kept is None or kept.data == b"genuine" * 100  # only ever the signed bytes
        forger_key = forger.channels.keys.public_key
        await wait_for(
            lambda: forger_key not in watched.neighbour_keys(), "the forger's stream was dropped"
        )
        assert forger_key in watched.banned  # and it is never taken back as a neighbour
