"""Hole punching over uTP: priming the NAT, and ``servent/holepunch/1`` for node channels.

See ``docs/relay.md``.  :func:`prime_nat` sends one byte with a small TTL
from the shared UDP port, which opens our NAT's mapping towards a peer
without the datagram reaching the peer's router (decision 0042).
:class:`NodePunch` serves the introduction protocol: as the introducer (a
relay-enabled node with a channel to both), as the introduced node, and as
the asker (:meth:`NodePunch.punch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from servent.codec.compact import Address, encode_peer
from servent.codec.node_id import format_node_id
from servent.net.channel_host import ChannelHost
from servent.net.holepunch_priming import DIAL_DELAY, prime_nat
from servent.net.node_channel import NodeChannel, NodeStream
from servent.net.relay import channel_peer_address, end_gracefully
from servent.net.utp_socket import UtpSocket
from servent.proto.channel import ChannelError, CloseCode
from servent.proto.relay import (
    PUNCH_PROTOCOL,
    RelayBook,
    RelayErrorCode,
    RelayMessageError,
    decode_control,
    encode_control,
    field_address,
    field_int,
    field_key,
    field_port,
)

__all__ = ["NodePunch", "dial_utp"]

log = logging.getLogger(__name__)

#: The introduced side dials too when no channel came within this long.
ANSWER_DIAL_AFTER = 2.0
INTRODUCTION_TIMEOUT = 5.0
PUNCH_DIAL_TIMEOUT = 8.0


async def dial_utp(
    host: ChannelHost, utp: UtpSocket, address: Address, expected: bytes
) -> NodeChannel:
    """A node channel over uTP only (a hole punch's dial), authenticated as ``expected``;
    the caller bounds the time."""
    channel = host.new_channel(initiator=True, expected=expected)
    try:
        await utp.create_connection(lambda: channel, *address)
        await channel.handshake_done
    except BaseException:
        if channel.transport is not None:
            channel.transport.abort()
        host.discard(channel)
        raise
    return channel


async def wait_for_channel(host: ChannelHost, key: bytes, seconds: float) -> None:
    """Return once a channel to ``key`` is open, or after ``seconds``."""
    if host.channel_to(key) is not None:
        return
    opened = asyncio.Event()

    def check(channel: NodeChannel) -> None:
        if channel.peer_key == key:
            opened.set()

    host.on_channel_open.append(check)
    try:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await opened.wait()
    finally:
        host.on_channel_open.remove(check)


class NodePunch:
    """``servent/holepunch/1`` on one node; see the module docstring."""

    def __init__(self, host: ChannelHost, utp: UtpSocket | None, book: RelayBook) -> None:
        self.host = host
        self.utp = utp
        self.book = book
        self.punched = 0
        self._tasks: set[asyncio.Task[None]] = set()
        host.protocols.register(PUNCH_PROTOCOL, self._serve)

    async def _serve(self, stream: NodeStream) -> None:
        try:
            async with asyncio.timeout(INTRODUCTION_TIMEOUT):
                first = await stream.receive()
            if first is None:
                return
            message = decode_control(first)
            if b"to" in message:
                await self._introduce(stream, field_key(message, b"to"), field_port(message))
            else:
                await self._introduced(stream, field_key(message, b"from"), field_address(message))
        except (RelayMessageError, TimeoutError) as exc:
            stream.reset(CloseCode.PROTOCOL_ERROR, str(exc))

    async def _introduce(self, stream: NodeStream, target: bytes, port: int) -> None:
        """We are the node both have a channel to: tell each where the other is."""
        source = stream.channel.peer_key
        seen = channel_peer_address(stream.channel)
        other = self.host.channel_to(target)
        other_seen = None if other is None else channel_peer_address(other)
        assert source is not None
        loop = asyncio.get_running_loop()
        error = self.book.introduce(
            source, target, target_connected=other_seen is not None, now=loop.time()
        )
        if error is None and seen is None:
            error = RelayErrorCode.REFUSED
        if error is not None:
            stream.send(encode_control({b"error": int(error)}))
            await end_gracefully(stream)
            return
        assert other is not None and other_seen is not None and seen is not None
        try:
            outbound = other.open_stream(PUNCH_PROTOCOL)
            outbound.send(encode_control({b"from": source, b"addr": encode_peer((seen[0], port))}))
            async with asyncio.timeout(INTRODUCTION_TIMEOUT):
                reply = await outbound.receive()
            if reply is None:
                raise RelayMessageError("the node refused the introduction")
            their_port = field_port(decode_control(reply))
            stream.send(encode_control({b"addr": encode_peer((other_seen[0], their_port))}))
            outbound.close()
        except (RelayMessageError, TimeoutError) as exc:
            log.debug("introduction to %s failed: %s", format_node_id(target), exc)
            stream.send(encode_control({b"error": int(RelayErrorCode.REFUSED)}))
        finally:
            self.book.introduction_done()
        await end_gracefully(stream)

    def _fresh_socket(self) -> UtpSocket:
        """A uTP socket on a new UDP port for one punch (accepting like the main one): the
        shared port may already have a stray entry in the other NAT (a DHT query to it)."""
        main = self.utp
        if main is None or not main.ports:
            raise ChannelError("hole punching needs uTP")
        fresh = UtpSocket(accept=main.accept)
        fresh.bind(main.ports[0].address[0], 0)
        return fresh

    def _hold(self, fresh: UtpSocket, channel: NodeChannel | None) -> None:
        """Keep the punch's socket while its channel lives (an owned task), then close it."""

        async def hold() -> None:
            try:
                if channel is not None:
                    await channel.wait_closed()
            finally:
                fresh.close()

        task = asyncio.get_running_loop().create_task(hold(), name="holepunch-socket")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _introduced(self, stream: NodeStream, source: bytes, address: Address) -> None:
        """A node wants a channel with us: prime our NAT, let it dial, dial too if slow."""
        try:
            fresh = self._fresh_socket()
        except (ChannelError, OSError):
            stream.reset(CloseCode.NORMAL, "no uTP")
            return
        try:
            stream.send(encode_control({b"port": fresh.port}))
            prime_nat(fresh, address)
            log.info("introduced to %s at %s:%d; primed", format_node_id(source), *address)
            await wait_for_channel(self.host, source, ANSWER_DIAL_AFTER)
            if self.host.channel_to(source) is None:
                with contextlib.suppress(ChannelError, OSError):
                    async with asyncio.timeout(PUNCH_DIAL_TIMEOUT):
                        await dial_utp(self.host, fresh, address, source)
        finally:
            channel = self.host.channel_to(source)
            self._hold(fresh, channel)
        if channel is not None:
            self.punched += 1

    async def punch(self, introducer: NodeChannel, target: bytes) -> NodeChannel:
        """A channel to ``target`` by a hole punch that ``introducer`` arranges."""
        fresh = self._fresh_socket()
        channel: NodeChannel | None = None
        try:
            channel = await self._punch(introducer, target, fresh)
        finally:
            self._hold(fresh, channel)
        return channel

    async def _punch(self, introducer: NodeChannel, target: bytes, fresh: UtpSocket) -> NodeChannel:
        name = format_node_id(target)
        stream = introducer.open_stream(PUNCH_PROTOCOL)
        stream.send(encode_control({b"to": target, b"port": fresh.port}))
        try:
            async with asyncio.timeout(INTRODUCTION_TIMEOUT * 2):
                reply = await stream.receive()
            message: dict[bytes, object] = (
                decode_control(reply) if reply is not None else {b"error": 3}
            )
            code = field_int(message, b"error")
            if code is not None:
                raise ChannelError(f"no introduction to {name} (error {code})")
            address = field_address(message)
        except (TimeoutError, RelayMessageError) as exc:
            raise ChannelError(f"no introduction to {name}: {exc}") from None
        finally:
            stream.close()
        prime_nat(fresh, address)
        log.info("introduced to %s at %s:%d; dialling over uTP", name, *address)
        await asyncio.sleep(DIAL_DELAY)  # the introduced side primes first (decision 0042)
        try:
            async with asyncio.timeout(PUNCH_DIAL_TIMEOUT):
                channel = await dial_utp(self.host, fresh, address, target)
        except (ChannelError, OSError):
            existing = self.host.channel_to(target)  # its dial may have won
            if existing is None:
                raise
            channel = existing
        self.punched += 1
        log.info("hole punched to %s at %s:%d", name, *address)
        return channel

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
