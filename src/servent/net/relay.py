"""``servent/relay/1``: relaying node channels for nodes nobody can dial (``docs/relay.md``).

:class:`RelayService` is both ends of the protocol on one node: as a relay
(``relay_enabled``) it holds reservations and pipes circuits, forwarding
opaque messages under a byte-rate cap; as an unreachable node it keeps a
reservation on a relay and accepts the circuits the relay brings, running an
ordinary node channel over each (:class:`~servent.net.relay_transport.StreamTransport`);
as a sender it dials a node through the relay its address record names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from servent.codec.compact import Address
from servent.codec.node_id import format_node_id
from servent.codec.node_record import RelayRef
from servent.net.channel_host import ChannelHost
from servent.net.node_channel import NodeChannel, NodeStream
from servent.net.relay_transport import StreamTransport
from servent.proto.channel import ChannelError, CloseCode
from servent.proto.ratelimit import TokenBucket
from servent.proto.relay import (
    MAX_CIRCUITS,
    RELAY_PROTOCOL,
    RelayBook,
    RelayErrorCode,
    RelayMessageError,
    answer,
    decode_control,
    encode_control,
    field_key,
    field_op,
    read_answer,
)

__all__ = ["RelayService", "channel_peer_address", "end_gracefully"]

log = logging.getLogger(__name__)

#: How long a stream's first message, or the far end's answer, may take.
CONTROL_TIMEOUT = 10.0
DEFAULT_MAX_RATE = 1 << 20


def channel_peer_address(channel: NodeChannel) -> Address | None:
    """The address a channel's peer is seen at (None for a relayed channel)."""
    transport = channel.transport
    if transport is None or transport.get_extra_info("relay") is not None:
        return None
    name = transport.get_extra_info("peername")
    return None if not name else (str(name[0]), int(name[1]))


async def end_gracefully(stream: NodeStream) -> None:
    """End our side and wait (bounded) for the peer's end, so our last message is read
    before the handler returns (a reset would drop it unread)."""
    stream.close()
    with contextlib.suppress(TimeoutError, ChannelError, ConnectionError):
        async with asyncio.timeout(CONTROL_TIMEOUT):
            while await stream.receive() is not None:
                pass


class RelayService:
    """See the module docstring; build one per node, after its channel host."""

    def __init__(
        self,
        host: ChannelHost,
        *,
        enabled: bool = False,
        max_rate: int = DEFAULT_MAX_RATE,
        max_circuits: int = MAX_CIRCUITS,
    ) -> None:
        self.host = host
        self.book = RelayBook(enabled=enabled, max_circuits=max_circuits)
        self.bucket = TokenBucket(max_rate or None, asyncio.get_running_loop().time())
        self.forwarded = 0
        #: Our reservation on a relay (an unreachable node's), and its stream.
        self.reservation: RelayRef | None = None
        self._reservation_stream: NodeStream | None = None
        self.on_reservation_change: list[Callable[[], None]] = []
        host.protocols.register(RELAY_PROTOCOL, self._serve)

    # -- serving -----------------------------------------------------------------------

    async def _serve(self, stream: NodeStream) -> None:
        try:
            async with asyncio.timeout(CONTROL_TIMEOUT):
                first = await stream.receive()
            if first is None:
                return
            message = decode_control(first)
            op = field_op(message)
            source = stream.channel.peer_key
            assert source is not None
            if op == "reserve":
                await self._hold_reservation(stream, source)
            elif op == "connect":
                await self._relay_circuit(stream, source, field_key(message, b"to"))
            else:
                await self._accept_circuit(stream, field_key(message, b"from"))
        except (RelayMessageError, TimeoutError) as exc:
            log.debug("relay stream from %s refused: %s", stream.channel.peer_id, exc)
            stream.reset(CloseCode.PROTOCOL_ERROR, str(exc))

    async def _hold_reservation(self, stream: NodeStream, key: bytes) -> None:
        error = self.book.reserve(key)
        stream.send(answer(error is None, error))
        if error is not None:
            await end_gracefully(stream)
            return
        log.info("relaying for %s", format_node_id(key))
        try:
            while await stream.receive() is not None:
                pass  # nothing is expected; the reservation lasts while the stream is open
        finally:
            self.book.release(key)

    async def _relay_circuit(self, stream: NodeStream, source: bytes, target: bytes) -> None:
        error = self.book.open_circuit(source, target)
        if error is not None:
            stream.send(answer(False, error))
            await end_gracefully(stream)
            return
        try:
            inbound = await self._open_inbound(source, target)
            if inbound is None:
                stream.send(answer(False, RelayErrorCode.REFUSED))
                await end_gracefully(stream)
                return
            stream.send(answer(True))
            await self._pipe(stream, inbound)
        finally:
            self.book.close_circuit()

    async def _open_inbound(self, source: bytes, target: bytes) -> NodeStream | None:
        channel = self.host.channel_to(target)
        if channel is None:
            return None
        inbound = channel.open_stream(RELAY_PROTOCOL)
        inbound.send(encode_control({b"op": b"incoming", b"from": source}))
        try:
            async with asyncio.timeout(CONTROL_TIMEOUT):
                reply = await inbound.receive()
            if reply is not None and read_answer(reply) is None:
                return inbound
        except (TimeoutError, RelayMessageError):
            pass
        inbound.reset(CloseCode.NORMAL, "circuit refused")
        return None

    async def _pipe(self, one: NodeStream, other: NodeStream) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._forward(one, other))
            group.create_task(self._forward(other, one))

    async def _forward(self, source: NodeStream, sink: NodeStream) -> None:
        loop = asyncio.get_running_loop()
        while (data := await source.receive()) is not None:
            wait = self.bucket.delay(len(data), loop.time())
            if wait > 0:
                await asyncio.sleep(wait)  # the relay's byte-rate cap
            self.bucket.consume(len(data), loop.time())
            sink.send(data)
            self.forwarded += len(data)
            await sink.drain()
        if source.reset_by_peer is not None:
            sink.reset(CloseCode.NORMAL, "the other end reset the circuit")
        else:
            sink.close()

    async def _accept_circuit(self, stream: NodeStream, source: bytes) -> None:
        """We hold a reservation: the relay brings a circuit from ``source``."""
        ours = self.reservation
        if ours is None or stream.channel.peer_key != ours.key:
            stream.send(answer(False, RelayErrorCode.REFUSED))
            await end_gracefully(stream)
            return
        stream.send(answer(True))
        transport = StreamTransport(stream, relay_label=format_node_id(ours.key))
        channel = self.host.new_channel(initiator=False)
        transport.start(channel)
        log.info("relayed channel from %s", format_node_id(source))
        await transport.wait_finished()

    # -- reserving (an unreachable node) -------------------------------------------------

    async def reserve(self, channel: NodeChannel) -> bool:
        """Ask the node at ``channel`` to relay for us; keep the reservation if granted."""
        address = channel_peer_address(channel)
        if self.reservation is not None or address is None or channel.peer_key is None:
            return False
        stream = channel.open_stream(RELAY_PROTOCOL)
        stream.send(encode_control({b"op": b"reserve"}))
        try:
            async with asyncio.timeout(CONTROL_TIMEOUT):
                reply = await stream.receive()
            error = RelayErrorCode.REFUSED if reply is None else read_answer(reply)
        except (TimeoutError, RelayMessageError):
            error = RelayErrorCode.REFUSED
        if error is not None or self.reservation is not None:
            stream.reset(CloseCode.NORMAL, "no reservation")
            return False
        self.reservation = RelayRef(channel.peer_key, address)
        self._reservation_stream = stream
        log.info("relay in use: %s at %s:%d", channel.peer_id, *address)
        self._changed()
        return True

    async def keep_reservation(self) -> None:
        """Until the relay drops our reservation (its stream or channel ends)."""
        stream = self._reservation_stream
        if stream is None:
            return
        with contextlib.suppress(ChannelError, ConnectionError):
            while await stream.receive() is not None:
                pass
        if self._reservation_stream is stream:
            self.reservation, self._reservation_stream = None, None
            log.info("the relay dropped our reservation")
            self._changed()

    def release(self) -> None:
        if self._reservation_stream is not None:
            self._reservation_stream.close()

    def _changed(self) -> None:
        for callback in self.on_reservation_change:
            callback()

    # -- dialling through a relay --------------------------------------------------------

    async def dial_via(self, relay: RelayRef, target: bytes) -> NodeChannel:
        """A channel to ``target`` through ``relay`` (which holds its reservation)."""
        relay_channel = await self.host.connect(relay.key, [relay.address])
        stream = relay_channel.open_stream(RELAY_PROTOCOL)
        stream.send(encode_control({b"op": b"connect", b"to": target}))
        name = format_node_id(target)
        try:
            async with asyncio.timeout(CONTROL_TIMEOUT):
                reply = await stream.receive()
            error = RelayErrorCode.REFUSED if reply is None else read_answer(reply)
        except (TimeoutError, RelayMessageError) as exc:
            stream.reset(CloseCode.NORMAL, "no answer")
            raise ChannelError(f"relay {relay_channel.peer_id} gave no circuit: {exc}") from None
        if error is not None:
            stream.reset(CloseCode.NORMAL, "refused")
            raise ChannelError(f"relay refused a circuit to {name}: {error.name}")
        transport = StreamTransport(stream, relay_label=format_node_id(relay.key))
        channel = self.host.new_channel(initiator=True, expected=target)
        transport.start(channel)
        try:
            async with asyncio.timeout(self.host.config.handshake_timeout):
                await channel.handshake_done
        except BaseException:
            transport.abort()
            raise
        return channel
