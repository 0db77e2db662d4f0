"""The BEP 10 extensions a servent peer connection speaks, and their local ids.

One registry for the whole node, so every connection (a torrent session's,
or a bare one dialled to fetch metadata for a magnet) announces the same
``m`` dictionary and both ends of the code agree on the names.  The ids
match libtorrent's choice (``ut_pex`` 1, ``ut_metadata`` 2); any would do,
since each side sends to the id the *other* side announced.
"""

from __future__ import annotations

from servent.proto.peerwire import PeerConnection
from servent.proto.peerwire.extensions import ExtensionRegistry

__all__ = ["UT_METADATA", "UT_PEX", "peer_metadata_id", "session_registry"]

UT_PEX = "ut_pex"
UT_METADATA = "ut_metadata"
_LOCAL_IDS = {UT_PEX: 1, UT_METADATA: 2}


def session_registry(*, pex: bool = True) -> ExtensionRegistry:
    """A registry with every extension a torrent session serves (a new one per call).

    ``pex=False`` for private torrents (BEP 27): their peers come from the
    tracker only, so ``ut_pex`` is not even announced.
    """
    registry = ExtensionRegistry()
    for name, local_id in _LOCAL_IDS.items():
        if pex or name != UT_PEX:
            registry.register(name, local_id)
    return registry


def peer_metadata_id(conn: PeerConnection) -> int | None:
    """The id the peer wants ``ut_metadata`` messages on (None: it does not serve metadata)."""
    remote = conn.remote_extensions
    return None if remote is None else remote.extensions.get(UT_METADATA)
