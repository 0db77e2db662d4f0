"""New versions pushed over the node channel (``docs/sync.md`` section 8).

A writer that published a version sends the signed item to every holder it
finds (the DHT peers of the share's versions); a holder checks the signature
and wakes its share at once instead of waiting for its next poll.  Polling
stays: a push is only a faster way to hear the same signed item.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, cast

from servent.codec import bencode
from servent.codec.share_key import SYNC_SALT, public_key_of
from servent.errors import DecodeError, ServentError
from servent.net.channel_host import ChannelHost
from servent.net.node_channel import NodeStream
from servent.net.owned_tasks import cancel_and_wait
from servent.proto.channel import ChannelError, CloseCode
from servent.proto.dht.items import private_key_from, sign
from servent.proto.sync_plan import PushedVersion, decode_push, encode_push

if TYPE_CHECKING:
    from servent.net.dht_driver import DhtDriver

__all__ = ["SYNC_PROTOCOL", "SyncPush", "push_frame"]

log = logging.getLogger(__name__)

SYNC_PROTOCOL = "servent/sync/1"
#: Holders told of one version at most, and seconds for each.
MAX_PUSH_TARGETS = 32
PUSH_TIMEOUT = 10.0
#: Pauses (seconds) before each round of lookup and push to the holders not reached yet.
PUSH_RETRY_DELAYS = (0.0, 5.0, 20.0)


def push_frame(seed: bytes, seq: int, value: bencode.BValue) -> bytes:
    """The signed version item, as the DHT holds it, for a push."""
    encoded = bencode.encode(cast("bencode.Encodable", value))
    signature = sign(private_key_from(seed), encoded, seq, SYNC_SALT)
    return encode_push(public_key_of(seed), seq, value, signature)


class SyncPush:
    """Sends and receives version pushes on a node's channel host."""

    def __init__(self, salt: bytes, on_version: Callable[[PushedVersion], None]) -> None:
        self._salt = salt
        self._on_version = on_version
        self._host: ChannelHost | None = None
        self._tasks: set[asyncio.Task[int]] = set()

    def start(self, host: ChannelHost | None) -> None:
        self._host = host
        if host is not None and SYNC_PROTOCOL not in host.protocols:
            host.protocols.register(SYNC_PROTOCOL, self._serve)

    def push_later(
        self,
        frame: bytes,
        driver: DhtDriver,
        info_hashes: Iterable[bytes],
        own: tuple[str, int] | None,
    ) -> None:
        """Push ``frame`` to the DHT peers of ``info_hashes`` (but ``own``), in the background.

        Every round looks the holders up again and pushes to those not reached yet: one
        holder taking it early must not leave those that announce later to their poll."""

        hashes = list(dict.fromkeys(info_hashes))

        async def find_and_push() -> int:
            reached: set[tuple[str, int]] = set()
            for delay in PUSH_RETRY_DELAYS:  # holders may still be announcing,
                await asyncio.sleep(delay)  # or too busy to answer in time
                try:
                    found = [await driver.get_peers(h) for h in hashes]
                    fresh = [p for f in found for p in f.peers if p != own and p not in reached]
                    reached.update(await self.push_to(frame, fresh))
                except (ServentError, OSError) as exc:  # polling still brings the version
                    log.warning("sync push not sent: %s", exc)
            return len(reached)

        task = asyncio.get_running_loop().create_task(find_and_push(), name="sync-push")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        await cancel_and_wait(self._tasks)

    async def push(self, frame: bytes, addresses: Iterable[tuple[str, int]]) -> int:
        """Send ``frame`` to each address (a bounded number, at once); how many took it."""
        return len(await self.push_to(frame, addresses))

    async def push_to(
        self, frame: bytes, addresses: Iterable[tuple[str, int]]
    ) -> list[tuple[str, int]]:
        """Send ``frame`` to each address (a bounded number, at once); those that took it."""
        host = self._host
        if host is None:
            return []
        targets = list(dict.fromkeys(addresses))[:MAX_PUSH_TARGETS]
        done = await asyncio.gather(*(self._push_one(host, frame, a) for a in targets))
        return [address for address, took in zip(targets, done, strict=True) if took]

    async def _push_one(self, host: ChannelHost, frame: bytes, address: tuple[str, int]) -> bool:
        try:
            async with asyncio.timeout(PUSH_TIMEOUT):
                channel = await host.dial(*address)  # or the channel both ends keep
                stream = channel.open_stream(SYNC_PROTOCOL)
                stream.send(frame)
                stream.close()
                while await stream.receive() is not None:  # the holder closes once it read it
                    pass
                return stream.reset_by_peer is None
        except (ChannelError, OSError, TimeoutError) as exc:  # not a servent node, or gone
            log.debug("sync push to %s:%d: %s", address[0], address[1], exc)
            return False

    async def _serve(self, stream: NodeStream) -> None:
        data = await stream.receive()
        if data is None:
            return
        try:
            pushed = decode_push(data, self._salt)
        except DecodeError as exc:
            stream.reset(CloseCode.PROTOCOL_ERROR, str(exc)[:200])
            return
        try:
            self._on_version(pushed)
        except Exception:  # a bug here must not take the channel down
            log.exception("a pushed sync version could not be handled")
        stream.close()
