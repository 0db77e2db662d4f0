"""A node's address record in the Mainline DHT: publish it, keep it fresh, look one up.

The record (``docs/node-channel.md`` section 9) is a BEP 44 mutable item
under the node's Ed25519 key with the salt ``servent-node``; the DHT driver
signs, stores and verifies it.  :class:`AddressPublisher` is the owner task
that publishes on start, every 30 minutes, and soon after the addresses
change, so a node whose IP changed is found again by its ID alone.  A put
that stored nowhere (a routing table still filling) is tried again after a
short, growing, jittered delay (:class:`PublishSchedule`), so a fresh node is
findable within seconds rather than after the next minute's check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
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

__all__ = [
    "AddressPublisher",
    "PublishSchedule",
    "find_node_record",
    "publish_node_record",
    "record_target",
]

log = logging.getLogger(__name__)

REPUBLISH_INTERVAL = 30 * 60.0
CHECK_INTERVAL = 60.0
FIRST_RETRY = 2.0
"""Seconds before the first retry of a put that stored nowhere; doubled up to CHECK_INTERVAL."""
RETRY_JITTER = 0.25
"""A retry comes up to this fraction early, so nodes started together do not retry together."""


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


class PublishSchedule:
    """When the next put is due (sans-IO: every call takes ``now``).

    Due at once; after a stored put, ``republish_interval`` later; after one
    that stored nowhere, ``first_retry`` later, doubling up to
    ``check_interval``, each delay up to :data:`RETRY_JITTER` shorter.
    """

    def __init__(
        self,
        now: float,
        *,
        republish_interval: float = REPUBLISH_INTERVAL,
        check_interval: float = CHECK_INTERVAL,
        first_retry: float = FIRST_RETRY,
        rng: random.Random | None = None,
    ) -> None:
        self.republish_interval = republish_interval
        self.check_interval = check_interval
        self.first_retry = min(first_retry, check_interval)
        self._rng = rng if rng is not None else random.Random()
        self._retry = self.first_retry
        self.next_due = now

    def is_due(self, now: float) -> bool:
        return now >= self.next_due

    def wait(self, now: float) -> float:
        """Seconds until the next put is due (0 when it is)."""
        return max(0.0, self.next_due - now)

    def stored(self, now: float) -> None:
        """A put stored: republish after the long interval; a later failure starts short."""
        self._retry = self.first_retry
        self.next_due = now + self.republish_interval

    def failed(self, now: float) -> None:
        """A put stored nowhere (or there was nothing to put): try again after the back-off."""
        delay = self._retry * (1.0 - RETRY_JITTER * self._rng.random())
        self._retry = min(self._retry * 2.0, self.check_interval)
        self.next_due = now + delay


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
        first_retry: float = FIRST_RETRY,
        rng: random.Random | None = None,
    ) -> None:
        self.dht = dht
        self.identity = identity
        self.addresses = addresses
        self.name = name
        self.relays = relays
        self.republish_interval = republish_interval
        self.check_interval = check_interval
        self.first_retry = first_retry
        self._rng = rng
        #: The addresses of the last record the DHT stored, and how many were stored.
        self.published: tuple[Address, ...] = ()
        self.published_relays: tuple[RelayRef, ...] = ()
        self.publications = 0
        #: Puts tried, stored or not (one in flight at a time).
        self.attempts = 0
        self._changed = asyncio.Event()

    def addresses_changed(self) -> None:
        """Publish soon (an external IP or port changed, or the DHT became ready)."""
        self._changed.set()

    async def run(self) -> None:
        """Publish now, then keep the record current until cancelled; one put at a time."""
        loop = asyncio.get_running_loop()
        schedule = PublishSchedule(
            loop.time(), republish_interval=self.republish_interval,
            check_interval=self.check_interval, first_retry=self.first_retry, rng=self._rng,
        )  # fmt: skip
        while True:
            current = tuple(dict.fromkeys(self.addresses()))[:MAX_ADDRESSES]
            relays = tuple(self.relays())[:MAX_RELAYS]
            changed = (current, relays) != (self.published, self.published_relays)
            if not current:  # no address known yet (the DHT has not told us our IP)
                schedule.failed(loop.time())
            elif changed or schedule.is_due(loop.time()):
                if await self._publish(current, relays):
                    schedule.stored(loop.time())
                else:
                    schedule.failed(loop.time())
            # Looked at every check interval at least: a new external IP calls nobody.
            await self._wait_for_change(min(schedule.wait(loop.time()), self.check_interval))

    async def _wait_for_change(self, seconds: float) -> None:
        """Sleep up to ``seconds``, less when :meth:`addresses_changed` is called."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._changed.wait()
        self._changed.clear()

    async def _publish(self, addresses: tuple[Address, ...], relays: tuple[RelayRef, ...]) -> bool:
        record = NodeRecord(addresses, int(time.time()), self.name, relays)
        self.attempts += 1
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
