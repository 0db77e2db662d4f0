"""A magnet torrent's wait for its metadata: attempts against the swarm until it comes.

One attempt asks every source (the magnet's ``x.pe``, the addresses the torrent
knows, trackers, the DHT) for a while; a node keeps trying, because peers with
the torrent may turn up at any time.  A one-shot command makes one attempt
instead (``SwarmEngine.fetch_metadata`` with its own timeout).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from servent.errors import ServentError

if TYPE_CHECKING:
    from servent.codec.magnet import Magnet
    from servent.codec.metainfo import Metainfo
    from servent.net.engine import SwarmEngine

log = logging.getLogger(__name__)

Address = tuple[str, int]
#: How long one metadata attempt may take before it is retried.
METADATA_ATTEMPT_TIMEOUT = 60.0
METADATA_RETRY_DELAY = 5.0


async def wait_for_metadata(
    swarm: SwarmEngine, magnet: Magnet, known: Callable[[], tuple[Address, ...]]
) -> Metainfo:
    """The magnet's torrent, verified; ``known`` gives the addresses to dial each attempt."""
    name = magnet.display_name or magnet.wire_info_hash.hex()
    while True:
        try:
            return await swarm.fetch_metadata(
                magnet, peers=known(), timeout=METADATA_ATTEMPT_TIMEOUT
            )
        except (ServentError, OSError) as exc:
            log.info("metadata for %s not found yet: %s", name, exc)
        await asyncio.sleep(METADATA_RETRY_DELAY)
