"""A node's address record in the Mainline DHT: publish it, keep it fresh, look one up.

The record (``docs/node-channel.md`` section 9) is a BEP 44 mutable item
under the node's Ed25519 key with the salt ``servent-node``; the DHT driver
signs, stores and verifies it.  :class:`AddressPublisher` is the owner task
that publishes on start, every 30 minutes, and soon after the addresses
change, so a node whose IP changed is found again by its ID alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from servent.codec.compact import Address
from servent.codec.node_record import (
    MAX_ADDRESSES,
    MAX_RELAYS,
    RECORD_SALT,
    NodeRecord,
    NodeRecordError,
    RelayRef,
    decode_node_record,
    encode_node_record,
)
from servent.errors import DhtError
from servent.proto.dht.items import mutable_target

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from servent.net.dht_driver import DhtDriver
    from servent.proto.dht import PutDone

__all__ = ["AddressPublisher", "find_node_record", "publish_node_record", "record_target"]

log = logging.getLogger(__name__)

REPUBLISH_INTERVAL = 30 * 60.0
CHECK_INTERVAL = 60.0


def record_target(public_key: bytes) -> bytes:
    """The DHT target of a node's record: SHA-1(public key + salt)."""
    return mutable_target(public_key, RECORD_SALT)


async def publish_node_record(
    dht: DhtDriver, identity: Ed25519PrivateKey, record: NodeRecord
) -> PutDone:
    """Store ``record`` signed by ``identity`` (seq = newest + 1); ``stored`` says how widely."""
    return await dht.put_mutable(identity, encode_node_record(record), salt=RECORD_SALT)


async def find_node_record(dht: DhtDriver, public_key: bytes) -> NodeRecord | None:
    """The newest valid record of the node with ``public_key``, or None."""
    found = await dht.get_item(record_target(public_key), salt=RECORD_SALT)
    if found.value is None or found.public_key != public_key:
        return None
    try:
        return decode_node_record(found.value)
    except NodeRecordError as exc:
        log.debug("unusable address record for %s: %s", public_key.hex(), exc)
        return None


class AddressPublisher:
    """Keeps this node's record in the DHT current; run :meth:`run` as an owned task."""

    def __init__(
        self,
        dht: DhtDriver,
        identity: Ed25519PrivateKey,
        addresses: Callable[[], Sequence[Address]],
        *,
        name: str | None = None,
        relays: Callable[[], Sequence[RelayRef]] = tuple,
        republish_interval: float = REPUBLISH_INTERVAL,
        check_interval: float = CHECK_INTERVAL,
    ) -> None:
        self.dht = dht
        self.identity = identity
        self.addresses = addresses
        self.name = name
        self.relays = relays
        self.republish_interval = republish_interval
        self.check_interval = check_interval
        #: The addresses of the last record the DHT stored, and how many were stored.
        self.published: tuple[Address, ...] = ()
        self.published_relays: tuple[RelayRef, ...] = ()
        self.publications = 0
        self._changed = asyncio.Event()

    def addresses_changed(self) -> None:
        """Publish soon (an external IP or port changed, or the DHT became ready)."""
        self._changed.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        next_publish = loop.time()
        while True:
            current = tuple(dict.fromkeys(self.addresses()))[:MAX_ADDRESSES]
            relays = tuple(self.relays())[:MAX_RELAYS]
            changed = (current, relays) != (self.published, self.published_relays)
            if current and (loop.time() >= next_publish or changed):
                published = await self._publish(current, relays)
                interval = self.republish_interval if published else self.check_interval
                next_publish = loop.time() + interval
            wait = self.check_interval
            if current:
                wait = max(0.0, min(wait, next_publish - loop.time()))
            await self._wait_for_change(wait)

    async def _wait_for_change(self, seconds: float) -> None:
        """Sleep up to ``seconds``, less when :meth:`addresses_changed` is called."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._changed.wait()
        self._changed.clear()

    async def _publish(self, addresses: tuple[Address, ...], relays: tuple[RelayRef, ...]) -> bool:
        record = NodeRecord(addresses, int(time.time()), self.name, relays)
        try:
            done = await publish_node_record(self.dht, self.identity, record)
        except (DhtError, NodeRecordError) as exc:
            log.info("address record not published: %s", exc)
            return False
        if done.stored == 0:
            log.debug("address record stored nowhere yet (%s); trying again", done.error)
            return False
        self.published, self.published_relays = addresses, relays
        self.publications += 1
        log.info("address record published (seq %s) on %d nodes", done.seq, done.stored)
        return True
