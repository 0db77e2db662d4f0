"""The sealed wire of network torrents as a thin layer under a :class:`PeerSession`.

Like :class:`~servent.net.encrypted_transport.MseStream` for MSE: a
:class:`SealedStream` runs the sans-IO handshake of
:mod:`servent.proto.network.sealed`, then hands the session a transport that
seals every write into ChaCha20-Poly1305 frames and feeds it the opened
plaintext.  The session never knows (``docs/networks.md`` section 8).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable
from typing import Protocol, cast

from servent.errors import SealedWireError, SealedWireRefused
from servent.net.encrypted_transport import Connector, EncryptedTransport, feed_buffered
from servent.proto.network.sealed import (
    SealedInitiator,
    SealedResponder,
    SealedResult,
    WireIdentity,
)

__all__ = ["NetworkTorrents", "SealedStream", "SealedTransport", "dial_sealed", "sealed_outcomes"]

log = logging.getLogger(__name__)

#: How long the sealed handshake may take before the connection is given up.
HANDSHAKE_TIMEOUT = 10.0

#: Sealed handshakes in this process by outcome ("sealed", "refused", "failed").
sealed_outcomes: Counter[str] = Counter()


class NetworkTorrents(Protocol):
    """What the node tells the engine about network torrents (``node.networks``)."""

    @property
    def wire_identity(self) -> WireIdentity: ...

    def swarm_key(self, info_hash: bytes) -> bytes | None:
        """The current swarm key of a network torrent, None for a public one."""
        ...

    def held_swarm_keys(self) -> list[tuple[bytes, bytes]]:
        """``(info_hash20, swarm_key)`` of every network torrent with a current key."""
        ...

    def admits(self, info_hash: bytes, node_key: bytes) -> bool:
        """Whether ``node_key`` is a member of the network of that torrent."""
        ...


class SealedTransport(EncryptedTransport):
    """The transport a peer session writes to: every write becomes sealed frames."""

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        self.write(b"".join(list_of_data))


class SealedStream(asyncio.Protocol):
    """One connection: sealed handshake first, then the peer session on top.

    :attr:`handshake_done` resolves to the :class:`SealedResult` or fails with
    :class:`SealedWireError` (refused, broken, timed out, hung up)."""

    def __init__(
        self,
        session: asyncio.BufferedProtocol,
        handshake: SealedInitiator | SealedResponder,
        *,
        timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self.session = session
        self._handshake = handshake
        self._timeout = timeout
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._result: SealedResult | None = None
        self.handshake_done: asyncio.Future[SealedResult] = (
            asyncio.get_running_loop().create_future()
        )

    @classmethod
    def dialling(
        cls, session: asyncio.BufferedProtocol, info_hash: bytes, network: NetworkTorrents
    ) -> SealedStream:
        swarm_key = network.swarm_key(info_hash)
        if swarm_key is None:
            raise SealedWireError("not a network torrent: it has no swarm key")
        handshake = SealedInitiator(
            info_hash[:20], swarm_key, network.wire_identity,
            lambda key: network.admits(info_hash, key),
        )  # fmt: skip
        return cls(session, handshake)

    @classmethod
    def accepting(cls, session: asyncio.BufferedProtocol, network: NetworkTorrents) -> SealedStream:
        handshake = SealedResponder(
            network.held_swarm_keys(), network.wire_identity, network.admits
        )
        return cls(session, handshake)

    @property
    def result(self) -> SealedResult | None:
        return self._result

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        self._timer = asyncio.get_running_loop().call_later(self._timeout, self._on_timeout)
        self._send()

    def data_received(self, data: bytes) -> None:
        try:
            if self._result is not None:
                plaintext = self._result.opener.open(data)
                if plaintext:
                    feed_buffered(self.session, plaintext)
                return
            self._handshake.receive_data(data)
            self._send()
            if self._handshake.result is not None:
                self._attach(self._handshake.result)
        except SealedWireError as exc:
            self._give_up(exc)

    def _send(self) -> None:
        out = self._handshake.data_to_send()
        if out and self._transport is not None:
            self._transport.write(out)

    def _attach(self, result: SealedResult) -> None:
        transport = self._transport
        assert transport is not None
        self._cancel_timer()
        self._result = result
        sealed_outcomes["sealed"] += 1
        self.session.connection_made(SealedTransport(transport, result.sealer.seal))
        if not self.handshake_done.done():
            self.handshake_done.set_result(result)
        if result.received:
            feed_buffered(self.session, result.received)

    def _give_up(self, exc: SealedWireError) -> None:
        log.debug("sealed wire with %s: %s", self._peer(), exc)
        if self._result is None:
            kind = "refused" if isinstance(exc, SealedWireRefused) else "failed"
            sealed_outcomes[kind] += 1
            self._fail(exc)
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, exc: SealedWireError) -> None:
        if not self.handshake_done.done():
            self.handshake_done.set_exception(exc)
            self.handshake_done.exception()  # retrieved: the dialler may not be waiting

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def abort(self) -> None:
        """Drop the connection now (before the handshake finished: the session never sees it)."""
        if self._transport is not None and self._result is None:
            self._transport.abort()

    def _on_timeout(self) -> None:
        self._timer = None
        if self._result is None:
            self._give_up(SealedWireError("sealed handshake timed out"))

    def _peer(self) -> object:
        return None if self._transport is None else self._transport.get_extra_info("peername")

    def eof_received(self) -> bool | None:
        if self._result is not None:
            return self.session.eof_received()
        self._give_up(SealedWireError("peer closed the connection during the sealed handshake"))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self._result is not None:
            self.session.connection_lost(exc)
        else:
            self._fail(SealedWireError(f"connection lost during the sealed handshake: {exc}"))

    def pause_writing(self) -> None:
        if self._result is not None:
            self.session.pause_writing()

    def resume_writing(self) -> None:
        if self._result is not None:
            self.session.resume_writing()


async def dial_sealed(
    session: asyncio.BufferedProtocol,
    host: str,
    port: int,
    *,
    info_hash: bytes,
    network: NetworkTorrents,
    connect_timeout: float,
    connect: Connector | None = None,
) -> None:
    """Connect ``session`` to a member over the sealed wire, or raise
    :class:`SealedWireError`, :class:`OSError` or :class:`TimeoutError`."""
    if connect is None:
        connect = asyncio.get_running_loop().create_connection
    stream = SealedStream.dialling(session, info_hash, network)
    async with asyncio.timeout(connect_timeout):  # not wait_for: it can lose a cancel (3.11)
        await connect(lambda: stream, host, port)
    try:
        await stream.handshake_done
    except asyncio.CancelledError:
        stream.abort()  # the torrent stopped while the handshake ran
        raise
