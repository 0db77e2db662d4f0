"""A node's end of every node channel: keys, protocol registry, dialling, accepting.

:class:`ChannelHost` serves the protocols registered in
:attr:`ChannelHost.protocols` (``name -> async handler(stream)``, like
libp2p's stream handlers), accepts channels through the peer listener's
first-bytes hook (:meth:`ChannelHost.sniffer`), and dials: :meth:`dial` one
address, :meth:`connect` a node by its key, reusing an open channel,
joining a dial already under way, or finding addresses with the resolver
(the DHT record lookup).  One channel per pair of nodes is kept: when both
dialled at once, the one initiated by the smaller key wins on both sides.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence

from servent.codec.compact import Address
from servent.codec.node_id import format_node_id
from servent.net.channel_sniffer import FirstBytesSniffer
from servent.net.limits import GlobalLimits
from servent.net.node_channel import NodeChannel, ProtocolRegistry
from servent.net.peer_dialer import PeerDialer
from servent.proto.channel import (
    ChannelConfig,
    ChannelConnection,
    ChannelError,
    ChannelTimeoutError,
    CloseCode,
    LocalKeys,
)

__all__ = ["AddressResolver", "ChannelHost"]

log = logging.getLogger(__name__)

#: Finds where a node (by Ed25519 key) can be reached, e.g. from its DHT record.
AddressResolver = Callable[[bytes], Awaitable[Sequence[Address]]]
#: How long :meth:`ChannelHost.close` waits for channels to go.
CLOSE_WAIT = 5.0
#: Connections being told apart (first bytes) or in a handshake at once.
MAX_PENDING = 64


class ChannelHost:
    """A node's channels; see the module docstring."""

    #: Set by the node when uTP is on: dials TCP or uTP in the ``utp_preference`` order.
    dialer: PeerDialer | None = None

    def __init__(
        self,
        keys: LocalKeys,
        *,
        config: ChannelConfig | None = None,
        limits: GlobalLimits | None = None,
        max_pending: int = MAX_PENDING,
        resolver: AddressResolver | None = None,
    ) -> None:
        self.keys = keys
        self.config = config or ChannelConfig()
        self.limits = limits
        self.max_pending = max_pending
        self.resolver = resolver
        self.protocols = ProtocolRegistry()
        #: Channels whose handshake completed, by the peer's key, oldest first.
        self.channels: dict[bytes, list[NodeChannel]] = {}
        self._pending: set[FirstBytesSniffer | NodeChannel] = set()
        self._all: set[NodeChannel] = set()
        self._connecting: dict[bytes, asyncio.Future[NodeChannel]] = {}
        self.refused = 0
        #: Called (soon after, not inside the channel's own event) with each channel
        #: that completed its handshake, and with each such channel once it is over.
        self.on_channel_open: list[Callable[[NodeChannel], None]] = []
        self.on_channel_closed: list[Callable[[NodeChannel], None]] = []
        #: Tried in turn when no address of a node answers (hole punch, relay).
        self.fallbacks: list[Callable[[bytes], Awaitable[NodeChannel]]] = []

    # -- accepting (called by the listener) --------------------------------------------

    def sniffer(self, peer_protocol: Callable[[], asyncio.BaseProtocol]) -> asyncio.BaseProtocol:
        """The protocol for a new incoming connection on the shared port."""
        if len(self._pending) >= self.max_pending:
            self.refused += 1
            return _Refuse()
        sniffer = FirstBytesSniffer(
            self._accept,
            peer_protocol,
            timeout=self.config.handshake_timeout,
            on_done=self._pending.discard,
        )
        self._pending.add(sniffer)
        return sniffer

    def _accept(self, transport: asyncio.Transport, first: bytes, accepted_at: float) -> None:
        channel = self._new_channel(initiator=False, expected=None, now=accepted_at)
        self._pending.add(channel)
        transport.set_protocol(channel)
        channel.connection_made(transport)
        channel.data_received(first)

    def _new_channel(
        self, *, initiator: bool, expected: bytes | None, now: float | None = None
    ) -> NodeChannel:
        loop = asyncio.get_running_loop()
        conn = ChannelConnection(
            self.keys,
            initiator=initiator,
            now=loop.time() if now is None else now,
            expected_peer=expected,
            protocols=self.protocols,
            config=self.config,
        )
        channel = NodeChannel(self, conn)
        self._all.add(channel)
        return channel

    def new_channel(self, *, initiator: bool, expected: bytes | None = None) -> NodeChannel:
        """A channel for a transport made elsewhere (a relay circuit's end, a hole
        punch's uTP dial); the caller connects it and awaits ``handshake_done``."""
        channel = self._new_channel(initiator=initiator, expected=expected)
        if not initiator:
            self._pending.add(channel)
        return channel

    def discard(self, channel: NodeChannel) -> None:
        """Forget a channel from :meth:`new_channel` that never connected."""
        self._forget(channel)

    # -- dialling ------------------------------------------------------------------

    async def dial(self, host: str, port: int, *, expected: bytes | None = None) -> NodeChannel:
        """A channel to ``host:port``, connected and authenticated within the
        handshake timeout; raises :class:`ChannelError` (another node than
        ``expected``, a failed handshake, the timeout) or :class:`OSError`.

        When that node and this one already share a channel that both ends keep
        (it dialled us first, say), that channel is returned: the new one is its
        duplicate and closes at once, so whatever was sent on it would be lost."""
        loop = asyncio.get_running_loop()
        limit = self.config.handshake_timeout
        channel = self._new_channel(initiator=True, expected=expected)
        try:
            async with asyncio.timeout(limit):
                if self.dialer is not None:  # TCP or uTP, in the node's order
                    await self.dialer.open(lambda: channel, host, port, connect_timeout=limit)
                else:
                    await loop.create_connection(lambda: channel, host, port)
                await channel.handshake_done
        except TimeoutError:
            channel.close(CloseCode.TIMEOUT, "handshake timed out")
            self._forget(channel)
            raise ChannelTimeoutError(f"no channel to {host}:{port} within {limit:.0f} s") from None
        except BaseException:
            if channel.transport is not None:
                channel.transport.abort()
            self._forget(channel)
            raise
        key = channel.peer_key
        kept = self.channel_to(key) if key is not None and key != self.keys.public_key else None
        return kept or channel

    async def connect(
        self, public_key: bytes, addresses: Sequence[Address] | None = None
    ) -> NodeChannel:
        """A channel to the node ``public_key``: the open one if there is one, else a
        dial to ``addresses`` (or what the resolver finds), one at a time."""
        existing = self.channel_to(public_key)
        if existing is not None:
            return existing
        if public_key == self.keys.public_key:
            raise ChannelError("cannot open a channel to this node itself")
        under_way = self._connecting.get(public_key)
        if under_way is not None:
            return await asyncio.shield(under_way)
        future: asyncio.Future[NodeChannel] = asyncio.get_running_loop().create_future()
        self._connecting[public_key] = future
        try:
            channel = await self._dial_any(public_key, addresses)
        except BaseException as exc:
            # The one who dialled was cancelled: those who joined were not, they failed.
            joined = ChannelError("the dial was given up") if _cancelled(exc) else exc
            future.set_exception(joined)
            future.exception()  # retrieved: nobody else may be waiting
            raise
        else:
            future.set_result(channel)
        finally:
            del self._connecting[public_key]
        return self.channel_to(public_key) or channel  # a fallback's may be a duplicate too

    async def _dial_any(
        self, public_key: bytes, addresses: Sequence[Address] | None
    ) -> NodeChannel:
        name = format_node_id(public_key)
        if addresses is None:
            if self.resolver is None:
                raise ChannelError(f"no address known for node {name}")
            addresses = await self.resolver(public_key)
        failures: list[str] = []
        for host, port in addresses:
            try:
                return await self.dial(host, port, expected=public_key)
            except (ChannelError, OSError) as exc:
                failures.append(f"{host}:{port}: {exc}")
        for fallback in self.fallbacks:  # a hole punch, a relay (net/relay.py)
            try:
                return await fallback(public_key)
            except (ChannelError, OSError) as exc:
                failures.append(str(exc))
        reason = "; ".join(failures) if failures else "no address found"
        raise ChannelError(f"cannot reach node {name} ({reason})")

    def channel_to(self, public_key: bytes) -> NodeChannel | None:
        """The open channel to ``public_key`` that both ends keep, if any."""
        open_channels = [c for c in self.channels.get(public_key, ()) if c.close_event is None]
        return self._keeper(public_key, open_channels) if open_channels else None

    def _keeper(self, public_key: bytes, candidates: list[NodeChannel]) -> NodeChannel:
        """The channel both ends agree on: initiated by the smaller key, newest first."""
        smaller_is_us = self.keys.public_key < public_key
        preferred = [c for c in candidates if c.conn.initiator == smaller_is_us]
        return (preferred or candidates)[-1]

    def _drop_duplicates(self, public_key: bytes) -> None:
        open_channels = [c for c in self.channels.get(public_key, ()) if c.close_event is None]
        if len(open_channels) < 2:
            return
        keeper = self._keeper(public_key, open_channels)
        for channel in open_channels:
            if channel is not keeper:
                channel.close(CloseCode.NORMAL, "duplicate channel")

    # -- bookkeeping -----------------------------------------------------------------

    def _admit(self, channel: NodeChannel) -> bool:
        """A channel finished its handshake: take a connection slot for it."""
        self._pending.discard(channel)
        if self.limits is not None and not self.limits.try_reserve():
            self.refused += 1
            return False
        key = channel.peer_key
        assert key is not None
        same = self.channels.setdefault(key, [])
        same.append(channel)
        loop = asyncio.get_running_loop()  # not now: the channel is inside its own event
        if len(same) > 1:
            loop.call_soon(self._drop_duplicates, key)
        for callback in self.on_channel_open:
            loop.call_soon(callback, channel)
        return True

    def _channel_over(self, channel: NodeChannel, *, held_slot: bool) -> None:
        """``held_slot``: the channel had been admitted (it counted as open)."""
        if held_slot and self.limits is not None:
            self.limits.release()
        self._pending.discard(channel)
        self._forget(channel)
        if held_slot:
            loop = asyncio.get_running_loop()
            for callback in self.on_channel_closed:
                loop.call_soon(callback, channel)

    def _forget(self, channel: NodeChannel) -> None:
        self._all.discard(channel)
        if channel.peer_key is not None:
            same = self.channels.get(channel.peer_key, [])
            if channel in same:
                same.remove(channel)
            if not same:
                self.channels.pop(channel.peer_key, None)

    def connected(self) -> Iterator[NodeChannel]:
        for channels in list(self.channels.values()):
            yield from channels

    async def close(self) -> None:
        """GOODBYE to every channel, drop connections still being told apart, wait (bounded)."""
        for pending in list(self._pending):
            if isinstance(pending, FirstBytesSniffer):
                pending.abort()
        channels = list(self._all)
        for channel in channels:
            if channel.close_event is None and channel.transport is not None:
                channel.close(CloseCode.SHUTDOWN, "shutting down")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_WAIT):
                for channel in channels:
                    if channel.transport is not None:
                        await channel.wait_closed()


def _cancelled(exc: BaseException) -> bool:
    return isinstance(exc, asyncio.CancelledError)


class _Refuse(asyncio.Protocol):
    """Closes at once: too many connections are being told apart or shaking hands."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()
