"""The node's channel host, attached to the peer listener of the default engine.

Why a separate module: the node only needs "start the channel host on the
port the engine listens on, close it at the end"; which engine owns that
port is a detail kept here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from servent.net.node_channel import ChannelHost
from servent.proto.channel import LocalKeys

if TYPE_CHECKING:
    from servent.node.engine import TorrentEngine
    from servent.node.identity import NodeIdentity

__all__ = ["start_channel_host"]


def start_channel_host(identity: NodeIdentity, engine: TorrentEngine) -> ChannelHost | None:
    """A channel host sharing the engine's listening port and connection limits, or
    None when the engine does not listen (or is not one whose port can be shared)."""
    from servent.node.swarm_engine import SwarmTorrentEngine

    if not isinstance(engine, SwarmTorrentEngine):
        return None
    swarm = engine.swarm
    if swarm.listener is None:
        return None
    host = ChannelHost(LocalKeys.create(identity.private_key), limits=swarm.limits)
    swarm.listener.channel_acceptor = host
    return host
