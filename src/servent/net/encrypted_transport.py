"""Message stream encryption (MSE/PE) as a thin layer under a :class:`PeerSession`.

The peer session stays unaware of encryption: an :class:`MseStream` is the
protocol the event loop talks to.  It first runs the sans-IO MSE handshake
(:mod:`servent.proto.mse`); then

* if RC4 was selected, it hands the session an :class:`EncryptedTransport`
  (writes are encrypted on the way out) and feeds it decrypted bytes;
* if plaintext was selected (the handshake was only obfuscation), it steps
  out of the way with ``transport.set_protocol(session)``: no cost per byte.

Incoming connections on one port are sniffed: a stream that starts with
``\\x13BitTorrent protocol`` is a plain peer (accepted unless encryption is
required), anything else is taken for an MSE initiator.
"""

from __future__ import annotations

import asyncio
import logging
import random
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, cast

from servent.errors import MseError
from servent.proto.mse import (
    CRYPTO_RC4,
    PLAIN_HANDSHAKE_PREFIX,
    EncryptionPolicy,
    MseInitiator,
    MseResponder,
    MseResult,
    is_plain_handshake,
)

__all__ = [
    "DEFAULT_ENCRYPTION",
    "EncryptedTransport",
    "MseStream",
    "dial_peer",
    "feed_buffered",
    "parse_policy",
    "used_mse",
]

log = logging.getLogger(__name__)

#: How long the MSE handshake may take before the connection is given up.
HANDSHAKE_TIMEOUT = 10.0

#: Sessions whose connection went through an MSE handshake (for PEX's encryption flag).
_mse_sessions: weakref.WeakSet[asyncio.BaseProtocol] = weakref.WeakSet()
_secure_rng = random.SystemRandom()
#: Handshakes in this process by outcome ("rc4", "obfuscated", "plain" when sniffed,
#: "plain fallback" when a dialled peer did not speak MSE):
#: how tests and diagnostics see what the streams actually negotiated.
handshake_outcomes: Counter[str] = Counter()


def parse_policy(value: str | EncryptionPolicy) -> EncryptionPolicy:
    """``"off" | "enabled" | "required"`` (the user setting) as a policy."""
    if isinstance(value, EncryptionPolicy):
        return value
    try:
        return EncryptionPolicy(value)
    except ValueError:
        raise MseError(f"encryption must be off, enabled or required, not {value!r}") from None


def used_mse(session: asyncio.BaseProtocol) -> bool:
    """Whether this peer session's connection was set up with an MSE handshake."""
    return session in _mse_sessions


def feed_buffered(protocol: asyncio.BufferedProtocol, data: bytes) -> None:
    """Hand ``data`` to a buffered protocol as if the loop had read it."""
    view = memoryview(data)
    while view:
        buffer = memoryview(protocol.get_buffer(len(view)))
        count = min(len(buffer), len(view))
        if count <= 0:
            raise MseError("peer session offered no read buffer")
        buffer[:count] = view[:count]
        view = view[count:]
        protocol.buffer_updated(count)
        if getattr(protocol, "close_reason", None) is not None:
            return


class EncryptedTransport(asyncio.Transport):
    """The transport a peer session writes to: RC4 on every byte, the rest passed through."""

    def __init__(self, inner: asyncio.Transport, encrypt: Callable[[bytes], bytes]) -> None:
        super().__init__()
        self._inner = inner
        self._encrypt = encrypt

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._inner.write(self._encrypt(bytes(data)))

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        encrypt = self._encrypt
        self._inner.writelines([encrypt(chunk) for chunk in list_of_data])  # type: ignore[arg-type]

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._inner.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def close(self) -> None:
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high=high, low=low)

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    def can_write_eof(self) -> bool:
        return False


class MseStream(asyncio.Protocol):
    """One TCP connection: MSE handshake first, then the peer session on top.

    Build it with :meth:`dialling` (we are the initiator) or :meth:`accepting`
    (incoming, plain or encrypted).  :attr:`handshake_done` resolves to the
    :class:`MseResult` (``None`` for a sniffed plain peer) or fails with
    :class:`MseError` when the handshake breaks, times out or the peer hangs up.
    """

    def __init__(
        self,
        session: asyncio.BufferedProtocol,
        *,
        policy: EncryptionPolicy,
        initiator: MseInitiator | None = None,
        info_hashes: Callable[[], Iterable[bytes]] | None = None,
        timeout: float = HANDSHAKE_TIMEOUT,
    ) -> None:
        self.session = session
        self.policy = policy
        self._initiator = initiator
        self._info_hashes = info_hashes
        self._responder: MseResponder | None = None
        self._timeout = timeout
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._sniffed = bytearray()
        self._decrypt: Callable[[bytes], bytes] | None = None
        self._decrypt_into: Callable[[memoryview, memoryview], int] | None = None
        self._attached = False  # the session had connection_made
        self.handshake_done: asyncio.Future[MseResult | None] = (
            asyncio.get_running_loop().create_future()
        )

    @classmethod
    def dialling(
        cls,
        session: asyncio.BufferedProtocol,
        info_hash: bytes,
        policy: EncryptionPolicy,
        *,
        timeout: float = HANDSHAKE_TIMEOUT,
    ) -> MseStream:
        initiator = MseInitiator(info_hash, policy=policy, rng=_secure_rng)
        return cls(session, policy=policy, initiator=initiator, timeout=timeout)

    @classmethod
    def accepting(
        cls,
        session: asyncio.BufferedProtocol,
        info_hashes: Callable[[], Iterable[bytes]],
        policy: EncryptionPolicy,
        *,
        timeout: float = HANDSHAKE_TIMEOUT,
    ) -> MseStream:
        return cls(session, policy=policy, info_hashes=info_hashes, timeout=timeout)

    # ---------------------------------------------------------------- protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's transports are not subclasses.
        self._transport = transport = cast(asyncio.Transport, transport)
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._timeout, self._on_timeout)
        if self._initiator is not None:
            transport.write(self._initiator.data_to_send())

    def data_received(self, data: bytes) -> None:
        if self._attached:
            if self._decrypt_into is not None:
                self._feed_decrypted(data)
            elif self._decrypt is not None:
                feed_buffered(self.session, self._decrypt(data))
            else:
                feed_buffered(self.session, data)
            return
        try:
            if self._initiator is None and self._responder is None:
                data = self._sniff(data)
                if not data:
                    return
            handshake = self._initiator or self._responder
            assert handshake is not None
            handshake.receive_data(data)
            out = handshake.data_to_send()
            if out and self._transport is not None:
                self._transport.write(out)
            if handshake.result is not None:
                self._attach(handshake.result)
        except MseError as exc:
            self._give_up(exc)

    def _feed_decrypted(self, data: bytes) -> None:
        """Decrypt straight into the session's read buffer (one copy, as for plain reads)."""
        session = self.session
        decrypt_into = self._decrypt_into
        assert decrypt_into is not None
        view = memoryview(data)
        while view:
            buffer = memoryview(session.get_buffer(len(view)))
            count = min(len(buffer), len(view))
            if count <= 0:
                raise MseError("peer session offered no read buffer")
            decrypt_into(view[:count], buffer[:count])
            view = view[count:]
            session.buffer_updated(count)
            if getattr(session, "close_reason", None) is not None:
                return

    def _sniff(self, data: bytes) -> bytes:
        """Decide plain or MSE from the first bytes; returns bytes for the responder."""
        self._sniffed += data
        prefix = bytes(self._sniffed[: len(PLAIN_HANDSHAKE_PREFIX)])
        if is_plain_handshake(prefix):
            if len(prefix) < len(PLAIN_HANDSHAKE_PREFIX):
                return b""  # could still be either: wait for more
            if self.policy is EncryptionPolicy.REQUIRED:
                raise MseError("plaintext handshake refused: encryption is required")
            self._attach(None)
            return b""
        if self.policy is EncryptionPolicy.OFF:
            raise MseError("encrypted handshake refused: encryption is off")
        hashes = list(self._info_hashes() if self._info_hashes is not None else ())
        self._responder = MseResponder(
            hashes,
            policy=self.policy,
            rng=_secure_rng,
            prefer_plaintext=self.policy is EncryptionPolicy.ENABLED,
        )
        first = bytes(self._sniffed)
        self._sniffed.clear()
        return first

    def _attach(self, result: MseResult | None) -> None:
        """Handshake over: put the peer session on the stream."""
        transport = self._transport
        assert transport is not None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        session = self.session
        self._attached = True
        outcome = (
            "plain" if result is None else "rc4" if result.crypto == CRYPTO_RC4 else "obfuscated"
        )
        handshake_outcomes[outcome] += 1
        if result is None:  # sniffed plain peer
            pending = bytes(self._sniffed)
            self._sniffed.clear()
            transport.set_protocol(session)
            session.connection_made(transport)
        elif result.crypto == CRYPTO_RC4:
            assert result.encrypt is not None and result.decrypt is not None
            _mse_sessions.add(session)
            self._decrypt = result.decrypt
            self._decrypt_into = getattr(result.decrypt, "update_into", None)
            pending = result.received
            session.connection_made(EncryptedTransport(transport, result.encrypt))
        else:  # obfuscated handshake, plaintext payload
            _mse_sessions.add(session)
            pending = result.received
            transport.set_protocol(session)
            session.connection_made(transport)
        if not self.handshake_done.done():
            self.handshake_done.set_result(result)
        if pending:
            feed_buffered(session, pending)

    def _give_up(self, exc: MseError) -> None:
        log.debug("MSE handshake with %s failed: %s", self._peer(), exc)
        if not self.handshake_done.done():
            self.handshake_done.set_exception(exc)
            self.handshake_done.exception()  # retrieved: the dialler may not be waiting
        if self._transport is not None:
            self._transport.abort()

    def abort(self) -> None:
        """Drop the connection now (before the handshake finished: the session never sees it)."""
        if self._transport is not None and not self._attached:
            self._transport.abort()

    def _on_timeout(self) -> None:
        self._timer = None
        if not self._attached:
            self._give_up(MseError("MSE handshake timed out"))

    def _peer(self) -> object:
        return None if self._transport is None else self._transport.get_extra_info("peername")

    def eof_received(self) -> bool | None:
        if self._attached:
            return self.session.eof_received()
        self._give_up(MseError("peer closed the connection during the MSE handshake"))
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._attached:
            self.session.connection_lost(exc)
        elif not self.handshake_done.done():
            self.handshake_done.set_exception(
                MseError(f"connection lost during the MSE handshake: {exc or 'closed'}")
            )
            self.handshake_done.exception()

    def pause_writing(self) -> None:
        if self._attached:
            self.session.pause_writing()

    def resume_writing(self) -> None:
        if self._attached:
            self.session.resume_writing()


#: ``connect(protocol_factory, host, port)``: ``loop.create_connection`` or uTP's.
Connector = Callable[[Callable[[], asyncio.BaseProtocol], str, int], Awaitable[object]]

#: The setting when the user gives none: accept both, try MSE first when dialling.
DEFAULT_ENCRYPTION = "enabled"


async def dial_peer(
    session: asyncio.BufferedProtocol,
    host: str,
    port: int,
    *,
    info_hash: bytes,
    policy: EncryptionPolicy,
    connect_timeout: float,
    connect: Connector | None = None,
) -> None:
    """Connect ``session`` to ``host:port`` under ``policy``.

    ``enabled`` tries an MSE handshake first and, if the peer does not speak
    it, dials again in plaintext (as libtorrent does); ``required`` fails
    instead.  Raises :class:`OSError`, :class:`TimeoutError` or
    :class:`MseError`.  ``session`` gets ``connection_made`` exactly once, on
    the connection that worked.
    """
    if connect is None:
        connect = asyncio.get_running_loop().create_connection
    if policy is not EncryptionPolicy.OFF:
        stream = MseStream.dialling(session, info_hash, policy)
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that
        # comes as the connection opens, and the stopped torrent's dial goes on.
        async with asyncio.timeout(connect_timeout):
            await connect(lambda: stream, host, port)
        try:
            await stream.handshake_done
            return
        except asyncio.CancelledError:
            stream.abort()  # the torrent stopped while the handshake ran
            raise
        except MseError as exc:
            if policy is EncryptionPolicy.REQUIRED:
                raise
            log.debug("%s:%d: no MSE (%s); dialling again in plaintext", host, port, exc)
            handshake_outcomes["plain fallback"] += 1
    async with asyncio.timeout(connect_timeout):
        await connect(lambda: session, host, port)
