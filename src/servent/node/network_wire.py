"""``servent/network/1`` over node channels: one request per stream, one answer.

:class:`NetworkWire` serves requests from other nodes through an ``answer``
function (the network service decides; this module only moves frames, bounds
time and turns malformed input into a reset), and :func:`ask` sends one
request to a node and returns its answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from servent.errors import NetworkError
from servent.net.channel_host import ChannelHost
from servent.net.node_channel import NodeStream
from servent.proto.channel.errors import ChannelError
from servent.proto.channel.frames import CloseCode
from servent.proto.network import PROTOCOL, Frame, Refusal, decode_frame, encode_frame

__all__ = ["NOT_ALLOWED", "REQUEST_TIMEOUT", "NetworkWire", "ask"]

log = logging.getLogger(__name__)

#: The one answer an outsider ever gets (unknown network, non-member, revoked member).
NOT_ALLOWED = "not allowed"
REQUEST_TIMEOUT = 10.0
Address = tuple[str, int]
Answer = Callable[[bytes, Frame], Awaitable[Frame]]


class NetworkWire:
    """Serves ``servent/network/1`` on a channel host."""

    def __init__(self, host: ChannelHost, answer: Answer) -> None:
        self.host = host
        self._answer = answer

    def register(self) -> None:
        self.host.protocols.register(PROTOCOL, self._serve)

    async def _serve(self, stream: NodeStream) -> None:
        peer = stream.channel.peer_key
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                data = await stream.receive()
        except TimeoutError:
            stream.reset(CloseCode.TIMEOUT, "no request")
            return
        if data is None or peer is None:
            return
        try:
            frame = decode_frame(data)
        except NetworkError as exc:
            log.debug("malformed network request from %s: %s", stream.channel.peer_id, exc)
            stream.reset(CloseCode.PROTOCOL_ERROR, "malformed request")
            return
        try:
            answer = await self._answer(peer, frame)
        except NetworkError as exc:
            answer = Refusal(str(exc)[:200])
        stream.send(encode_frame(answer))
        stream.close()


async def ask(
    host: ChannelHost,
    key: bytes,
    frame: Frame,
    *,
    addresses: Sequence[Address] = (),
    within: float = REQUEST_TIMEOUT,
) -> Frame:
    """Send ``frame`` to node ``key`` and return its answer; :class:`NetworkError` when
    the node cannot be reached, does not answer in time or answers garbage.  A channel
    that closed under the request (the peer was ending it) is replaced once."""
    try:
        async with asyncio.timeout(within):
            for attempt in range(2):
                channel = await host.connect(key, list(addresses) or None)
                stream = channel.open_stream(PROTOCOL)
                stream.send(encode_frame(frame))
                stream.close()
                data = await stream.receive()
                if data is not None or stream.reset_by_peer is not None or attempt:
                    break
                await channel.closed.wait()  # it was closing: the next connect dials anew
    except TimeoutError:
        raise NetworkError("the node did not answer in time") from None
    except (ChannelError, OSError) as exc:
        raise NetworkError(f"cannot reach the node: {exc}") from None
    if data is None:
        reason = stream.reset_by_peer[1] if stream.reset_by_peer else "no answer"
        raise NetworkError(f"the node did not answer ({reason})")
    return decode_frame(data)
