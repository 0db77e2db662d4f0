"""Block provenance, parole and bans now live in the swarm core (:mod:`servent.proto.swarm`)."""

from servent.proto.swarm.provenance import BanList, PeerIdentity, Provenance

__all__ = ["BanList", "PeerIdentity", "Provenance"]
