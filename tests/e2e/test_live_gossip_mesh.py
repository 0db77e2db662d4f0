"""The gossip mesh never trims a channel that carries a live stream.

Seen under load in the 20-viewer proof: the broadcaster daemon had more than
12 channels (its viewers, and the viewers it had turned away), so its gossip
mesh closed some of them, among them the channels of its direct viewers;
their live streams died with them and the end piece reached nobody.
"""

from __future__ import annotations

import pytest

from polling import wait_for
from servent.node.broadcasts import GOSSIP_PROTOCOL
from servent.node.gossip_peers import keys_used_by_other_protocols
from servent.proto.live_wire import LIVE_PROTOCOL
from servent.testing.live_nodes import LiveNode

pytestmark = pytest.mark.e2e


async def test_a_channel_carrying_a_live_stream_is_protected_from_mesh_trimming() -> None:
    async with LiveNode() as broadcaster, LiveNode() as viewer:
        session = broadcaster.live.broadcast("mesh")
        watched = viewer.live.watch(broadcaster.live.live_key(session.topic))
        await wait_for(lambda: bool(session.neighbours), "the viewer is a neighbour")
        viewer_key = viewer.channels.keys.public_key
        assert keys_used_by_other_protocols(broadcaster.channels, GOSSIP_PROTOCOL) == {viewer_key}
        # Only the live protocol's own streams: nothing to protect from the live protocol.
        assert keys_used_by_other_protocols(broadcaster.channels, LIVE_PROTOCOL) == frozenset()
        viewer.live.leave(watched.topic)  # the stream is over: the channel is trimmable again
        await wait_for(
            lambda: not keys_used_by_other_protocols(broadcaster.channels, GOSSIP_PROTOCOL),
            "the live stream is gone from the channel",
        )
