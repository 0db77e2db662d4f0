"""Names of the BEP 10 extensions servent speaks, shared by every layer that uses them.

Which extensions a torrent session speaks, and the ids it announces for them,
come from the registry in :mod:`servent.net.extension_points` (each extension
registers itself); this module only names the built-in ones and reads a
peer's handshake for them.
"""

from __future__ import annotations

from servent.proto.peerwire import PeerConnection

__all__ = ["UT_METADATA", "UT_PEX", "peer_metadata_id"]

UT_PEX = "ut_pex"
UT_METADATA = "ut_metadata"


def peer_metadata_id(conn: PeerConnection) -> int | None:
    """The id the peer wants ``ut_metadata`` messages on (None: it does not serve metadata)."""
    remote = conn.remote_extensions
    return None if remote is None else remote.extensions.get(UT_METADATA)
