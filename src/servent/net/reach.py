"""The connect-back check ``servent/reach/1`` over node channels (``docs/reachability.md``).

:class:`ConnectBackService` answers other nodes: it dials the port they name,
on the IP address their channel comes from and nowhere else, and says
whether the TCP connection was accepted.  :func:`ask_connect_back` is the
asking side.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from typing import TYPE_CHECKING

from servent.proto.channel.frames import CloseCode
from servent.proto.reach import (
    PROTOCOL,
    ReachAnswer,
    ReachMessageError,
    decode_answer,
    decode_request,
    encode_answer,
    encode_request,
)

if TYPE_CHECKING:
    from servent.codec.compact import Address
    from servent.net.channel_host import ChannelHost
    from servent.net.node_channel import NodeChannel, NodeStream

log = logging.getLogger(__name__)

MAX_CHECKS = 4
DIAL_TIMEOUT = 10.0
REQUEST_TIMEOUT = 10.0
ANSWER_TIMEOUT = DIAL_TIMEOUT + 10.0


class ConnectBackService:
    """Serves ``servent/reach/1`` on ``host``: at most ``max_checks`` dials at once,
    one per channel."""

    def __init__(
        self, host: ChannelHost, *, max_checks: int = MAX_CHECKS, dial_timeout: float = DIAL_TIMEOUT
    ) -> None:
        self._max_checks = max_checks
        self._dial_timeout = dial_timeout
        self._busy: set[int] = set()
        host.protocols.register(PROTOCOL, self.handle)

    async def handle(self, stream: NodeStream) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                port = decode_request(await stream.receive() or b"")
                # One message, then the asker's CLOSE: waiting for it here means the
                # answer is never raced by a reset of a stream the asker still sends on.
                if await stream.receive() is not None:
                    raise ReachMessageError("more than one request on the stream")
        except (ReachMessageError, TimeoutError) as exc:
            stream.reset(CloseCode.PROTOCOL_ERROR, f"bad reach request: {exc}")
            return
        seen = _peer_address(stream.channel)
        if seen is None:
            return
        key = id(stream.channel)
        if len(self._busy) >= self._max_checks or key in self._busy:
            stream.send(encode_answer(ReachAnswer(False, seen)))
            return
        self._busy.add(key)
        try:
            ok = await self._dial(seen[0], port)
        finally:
            self._busy.discard(key)
        log.debug("connect-back to %s:%d: %s", seen[0], port, "accepted" if ok else "failed")
        stream.send(encode_answer(ReachAnswer(ok, seen)))

    async def _dial(self, host: str, port: int) -> bool:
        """Open a TCP connection and close it without a byte sent."""
        try:
            async with asyncio.timeout(self._dial_timeout):
                _, writer = await asyncio.open_connection(host, port)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True


def _peer_address(channel: NodeChannel) -> Address | None:
    transport = channel.transport
    peer = None if transport is None else transport.get_extra_info("peername")
    if not peer:
        return None
    host = str(peer[0])
    mapped = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(mapped, ipaddress.IPv6Address) and mapped.ipv4_mapped is not None:
        host = str(mapped.ipv4_mapped)
    return host, int(peer[1])


async def ask_connect_back(channel: NodeChannel, port: int) -> ReachAnswer:
    """Ask the node at the other end of ``channel`` to dial our ``port`` (bounded wait)."""
    stream = channel.open_stream(PROTOCOL)
    stream.send(encode_request(port))
    stream.close()
    async with asyncio.timeout(ANSWER_TIMEOUT):
        data = await stream.receive()
    if data is None:
        raise ReachMessageError("the node did not answer the reach request")
    return decode_answer(data)
