"""Broadcast by gossip: signed messages spread along a mesh of node channels.

The wire format and the rules are in ``docs/gossip.md``. ``message`` holds the
signed message and its bounds, ``frames`` the frames neighbours exchange, and
``router`` the sans-IO mesh router that decides what to forward to whom.
"""

from servent.proto.gossip.frames import Graft, IHave, IWant, Prune, Publish
from servent.proto.gossip.message import GossipError, GossipMessage, message_id
from servent.proto.gossip.router import (
    Deliver,
    Disconnect,
    Exchanged,
    GossipConfig,
    GossipRouter,
    Send,
)

__all__ = [
    "Deliver",
    "Disconnect",
    "Exchanged",
    "GossipConfig",
    "GossipError",
    "GossipMessage",
    "GossipRouter",
    "Graft",
    "IHave",
    "IWant",
    "Prune",
    "Publish",
    "Send",
    "message_id",
]
