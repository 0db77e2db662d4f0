"""Broadcasts by gossip: the :class:`~servent.proto.gossip.GossipRouter` driven over node channels.

Every open node channel is a gossip neighbour (the channel host's open and
closed callbacks add and remove it); the :class:`NeighbourBook` hears of each,
and of the nodes neighbours name in their peer exchange (``px``), which this
module sends to every new neighbour (:mod:`.gossip_peers` dials and drops).
Frames to a neighbour go on one ``servent/gossip/1`` stream this node opens
on the channel; frames from it arrive on the stream it opened.  Our own
broadcasts are signed with the node's Ed25519 key; received ones are verified
by the router before they are delivered, stored and forwarded
(``docs/gossip.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from servent.codec.compact import decode_peer, encode_peer
from servent.errors import CompactEncodingError
from servent.net.channel_host import ChannelHost
from servent.net.node_channel import NodeChannel, NodeStream
from servent.net.owned_tasks import cancel_and_wait
from servent.node.direct_messages import MessagingError, RateLimitedError, check_text
from servent.node.identity import NodeIdentity
from servent.node.message_store import MessageStore, StoredMessage
from servent.proto.channel import ChannelError, CloseCode
from servent.proto.gossip import (
    Deliver,
    Disconnect,
    Exchanged,
    GossipConfig,
    GossipMessage,
    GossipRouter,
    Send,
)
from servent.proto.gossip.frames import Frame, PeerExchange, encode_frame
from servent.proto.gossip.message import MAX_CHANNEL
from servent.proto.gossip.neighbours import NeighbourBook
from servent.proto.ratelimit import TokenBucket

__all__ = ["GOSSIP_PROTOCOL", "Broadcasts", "verify_gossip"]

log = logging.getLogger(__name__)

GOSSIP_PROTOCOL = "servent/gossip/1"
SEQUENCE_COUNTER = "gossip-sequence"
#: Bytes waiting in a neighbour's socket buffer above which gossip frames to it are
#: dropped (IHAVE/IWANT repairs what a slow neighbour misses).
MAX_WRITE_BUFFER = 4 * 1024 * 1024

OnReceived = Callable[[StoredMessage], None]


def verify_gossip(message: GossipMessage) -> bool:
    """Whether the author's Ed25519 signature over the signed bytes holds."""
    try:
        key = Ed25519PublicKey.from_public_bytes(message.author)
        key.verify(message.signature, message.signed_bytes())
    except (InvalidSignature, ValueError):
        return False
    return True


def check_channel(name: str) -> bytes:
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_CHANNEL:
        raise MessagingError(f"a channel name is at most {MAX_CHANNEL} bytes")
    return encoded


class Broadcasts:
    """One node's gossip: neighbours from its channels, its own signed broadcasts."""

    def __init__(
        self,
        host: ChannelHost,
        store: MessageStore,
        identity: NodeIdentity,
        *,
        on_received: OnReceived,
        config: GossipConfig | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._host = host
        self._store = store
        self._identity = identity
        self._on_received = on_received
        self._clock = clock
        now = clock()
        rng = rng or random.Random()
        self.router = GossipRouter(rng=rng, now=now, verify=verify_gossip, config=config)
        self.book = NeighbourBook(own_key=identity.public_key, rng=rng)
        #: Where this node accepts channels (0: not known), told in peer exchanges.
        self.listen_port: Callable[[], int] = lambda: 0
        #: Called with a channel name this node starts keeping.
        self.on_follow: Callable[[str], None] = lambda _: None
        config = self.router.config
        self._own_rate = TokenBucket(config.author_rate, now, config.author_burst)
        self._streams: dict[NodeChannel, NodeStream] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def neighbours(self) -> set[bytes]:
        return {peer for peer in self.router.neighbours if isinstance(peer, bytes)}

    def start(self) -> None:
        for name in self._store.followed_channels():
            self.router.subscribe(name.encode("utf-8"))
        self._host.protocols.register(GOSSIP_PROTOCOL, self._serve)
        self._host.on_channel_open.append(self._channel_open)
        self._host.on_channel_closed.append(self._channel_closed)
        for channel in list(self._host.connected()):
            self._channel_open(channel)
        self._spawn(self._heartbeats(), "gossip-heartbeat")

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            self._host.on_channel_open.remove(self._channel_open)
            self._host.on_channel_closed.remove(self._channel_closed)
        await cancel_and_wait(self._tasks)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- publishing ------------------------------------------------------------------

    async def publish(self, text: str, channel: str = "") -> StoredMessage:
        """Sign and spread a broadcast; refused beyond the per-author rate every node applies."""
        payload = check_text(text)
        channel_bytes = check_channel(channel)
        now = self._clock()
        if not self._own_rate.try_consume(1.0, now):
            wait = self._own_rate.delay(1.0, now)
            config = self.router.config
            raise RateLimitedError(
                f"broadcast rate limit: {config.author_rate:g} a second, bursts of "
                f"{config.author_burst:g} (other nodes drop more); try again in {wait:.1f} s",
                wait,
            )
        await self.follow(channel)
        sequence = await asyncio.to_thread(self._store.next_counter, SEQUENCE_COUNTER)
        unsigned = GossipMessage(
            self._identity.public_key, sequence, int(now), channel_bytes, payload
        )
        signed = GossipMessage(
            unsigned.author, unsigned.sequence, unsigned.time, unsigned.channel,
            unsigned.payload, self._identity.sign(unsigned.signed_bytes()),
        )  # fmt: skip
        ident = self.router.publish(signed, self._clock())
        self._run_actions()
        message = StoredMessage(
            id=ident, direction="out", kind="broadcast", peer=self._identity.public_key,
            channel=channel, text=text, time=now, read=True,
        )  # fmt: skip
        await asyncio.to_thread(self._store.queue_outgoing, message)
        return message

    # -- channels kept -----------------------------------------------------------------

    def followed(self) -> list[str]:
        """Channels this node keeps and relays (``""``, the whole network, always)."""
        return sorted(c.decode("utf-8") for c in self.router.subscriptions)

    async def follow(self, channel: str) -> bool:
        """Keep and relay ``channel`` from now on (remembered across restarts)."""
        encoded = check_channel(channel)
        if encoded in self.router.subscriptions:
            return False
        await asyncio.to_thread(self._store.follow_channel, channel, self._clock())
        self.router.subscribe(encoded)
        self._run_actions()
        self.on_follow(channel)
        return True

    async def unfollow(self, channel: str) -> bool:
        encoded = check_channel(channel)
        if not self.router.unsubscribe(encoded):
            return False
        await asyncio.to_thread(self._store.unfollow_channel, channel)
        self._run_actions()
        return True

    # -- neighbours ------------------------------------------------------------------

    def _channel_open(self, channel: NodeChannel) -> None:
        key = channel.peer_key
        if channel.close_event is not None or key is None:
            return
        if key not in self.router.neighbours:
            now = self._clock()
            self.router.add_neighbour(key, now)
            self.book.opened(key, now, outbound=channel.conn.initiator)
            self._send(key, self._exchange_for(key))
            self._run_actions()
        with contextlib.suppress(ChannelError):  # an open stream keeps the channel from idling out
            self._stream_for(channel)

    def _channel_closed(self, channel: NodeChannel) -> None:
        self._streams.pop(channel, None)
        key = channel.peer_key
        if key is not None and self._host.channel_to(key) is None:
            self.router.remove_neighbour(key)
            self.book.closed(key, self._clock())

    def _exchange_for(self, key: bytes) -> PeerExchange:
        """Our listening port and some nodes we know, for the neighbour ``key``."""
        entries: list[bytes] = []
        for peer, address in self.book.exchange(key):
            if isinstance(peer, bytes) and isinstance(address, tuple):
                with contextlib.suppress(CompactEncodingError, ValueError, TypeError):
                    entries.append(peer + encode_peer(address))
        return PeerExchange(self.listen_port(), tuple(entries))

    def send_exchange(self, key: bytes) -> None:
        """Tell ``key`` about other nodes (before dropping its channel)."""
        self._send(key, self._exchange_for(key))

    def _exchanged(self, key: bytes, exchange: PeerExchange) -> None:
        channel = self._host.channel_to(key)
        transport = None if channel is None else channel.transport
        peername = None if transport is None else transport.get_extra_info("peername")
        now = self._clock()
        if exchange.port and isinstance(peername, tuple):
            self.book.listening(key, (str(peername[0]), exchange.port), now)
        for entry in exchange.peers:
            with contextlib.suppress(CompactEncodingError):
                self.book.learn(decode_peer(entry[32:]), now, entry[:32])

    def _send(self, peer: bytes, frame: Frame) -> None:
        channel = self._host.channel_to(peer)
        if channel is None:
            self.router.remove_neighbour(peer)
            return
        transport = channel.transport
        if transport is not None and transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            return
        try:
            self._stream_for(channel).send(encode_frame(frame))
        except ChannelError as exc:
            log.debug("gossip frame to %s not sent: %s", channel.peer_id, exc)

    def _stream_for(self, channel: NodeChannel) -> NodeStream:
        """Our gossip stream on ``channel``, opened on first use."""
        stream = self._streams.get(channel)
        if stream is None or stream.closed_for_sending:
            stream = self._streams[channel] = channel.open_stream(GOSSIP_PROTOCOL)
        return stream

    # -- receiving -------------------------------------------------------------------

    async def _serve(self, stream: NodeStream) -> None:
        """A neighbour's gossip stream: every frame goes to the router."""
        self._channel_open(stream.channel)
        peer = stream.channel.peer_key
        while (data := await stream.receive()) is not None:
            self.router.receive_bytes(peer, data, self._clock())
            self._run_actions()

    def _run_actions(self) -> None:
        for action in self.router.actions():
            if isinstance(action, Send):
                assert isinstance(action.peer, bytes)
                self._send(action.peer, action.frame)
            elif isinstance(action, Deliver):
                self._spawn(self._store_delivered(action), "gossip-store")
            elif isinstance(action, Exchanged):
                assert isinstance(action.peer, bytes)
                self._exchanged(action.peer, action.exchange)
            elif isinstance(action, Disconnect):
                assert isinstance(action.peer, bytes)
                channel = self._host.channel_to(action.peer)
                if channel is not None:
                    channel.close(CloseCode.PROTOCOL_ERROR, action.reason[:200])

    async def _store_delivered(self, action: Deliver) -> None:
        gossip = action.message
        now = self._clock()
        message = StoredMessage(
            id=action.id, direction="in", kind="broadcast", peer=gossip.author,
            channel=gossip.channel.decode("utf-8"),
            text=gossip.payload.decode("utf-8", errors="replace"), time=now, received=now,
        )  # fmt: skip
        if await asyncio.to_thread(self._store.receive, message):
            self._on_received(message)

    async def _heartbeats(self) -> None:
        while True:
            delay = self.router.next_timer() - self._clock()
            await asyncio.sleep(max(delay, 0.05))
            self.router.handle_timer(self._clock())
            self._run_actions()
