"""``servent/search/1`` over node channels: answer requests, and ask other nodes.

One stream per request (``docs/search.md`` §2). The driver only moves
messages: what to answer and what to ask is decided by the node's search
service through the callbacks of :class:`SearchResponder`. Every wait is
bounded; a malformed message resets the stream and is reported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from servent.codec.bencode import encode
from servent.net.channel_host import ChannelHost
from servent.net.node_channel import NodeChannel, NodeStream
from servent.proto.channel import ChannelError, CloseCode
from servent.proto.search import (
    Query,
    ResultBatch,
    SearchEntry,
    SearchMessage,
    SearchProtocolError,
    Store,
    StoreAnswer,
    SupernodeAsk,
    SupernodeList,
    decode_message,
    encode_message,
)
from servent.proto.search.frames import MAX_BATCH, MAX_STORE

__all__ = [
    "PROTOCOL",
    "SearchResponder",
    "ask",
    "channel_to",
    "result_batches",
    "store_messages",
]

log = logging.getLogger(__name__)

PROTOCOL = "servent/search/1"
#: How long a responder waits for the request after the stream opened.
REQUEST_WAIT = 10.0
#: Most answer messages read for one request (batches of a routed query).
MAX_ANSWERS = 64
#: Encoded entries per result batch stay under this (the message bound is 60,000).
BATCH_BYTES = 50_000

QueryAnswer = Callable[[Query, bytes], AsyncIterator[Sequence[SearchEntry]]]
StoreHandler = Callable[[Store, bytes], Awaitable[StoreAnswer]]
SupernodeHandler = Callable[[SupernodeAsk, bytes, str], SupernodeList]
BadPeer = Callable[[bytes], None]


def _chunks(entries: Sequence[SearchEntry], count: int) -> list[list[SearchEntry]]:
    """Entries in groups of at most ``count`` whose encoding stays under the size bound."""
    groups: list[list[SearchEntry]] = []
    current: list[SearchEntry] = []
    size = 0
    for entry in entries:
        length = len(encode(entry.to_dict()))
        if current and (len(current) >= count or size + length > BATCH_BYTES):
            groups.append(current)
            current, size = [], 0
        current.append(entry)
        size += length
    if current:
        groups.append(current)
    return groups


def result_batches(query_id: bytes, entries: Sequence[SearchEntry]) -> list[ResultBatch]:
    """Entries cut into batches that respect the count and size bounds (not the last)."""
    return [
        ResultBatch(query_id, tuple(group), last=False) for group in _chunks(entries, MAX_BATCH)
    ]


def store_messages(entries: Sequence[SearchEntry], *, forward: bool) -> list[Store]:
    """Entries cut into store messages that respect the count and size bounds."""
    return [Store(tuple(group), forward=forward) for group in _chunks(entries, MAX_STORE)]


@dataclass
class SearchResponder:
    """The stream handler registered as ``servent/search/1`` in the channel host."""

    answer_query: QueryAnswer
    store: StoreHandler
    supernodes: SupernodeHandler
    bad_peer: BadPeer

    def register(self, host: ChannelHost) -> None:
        host.protocols.register(PROTOCOL, self.handle)

    async def handle(self, stream: NodeStream) -> None:
        peer = stream.channel.peer_key
        assert peer is not None
        try:
            async with asyncio.timeout(REQUEST_WAIT):
                data = await stream.receive()
            if data is None:
                return
            message = decode_message(data)
        except (SearchProtocolError, TimeoutError) as exc:
            log.debug("search request from %s refused: %s", stream.channel.peer_id, exc)
            self.bad_peer(peer)
            stream.reset(CloseCode.PROTOCOL_ERROR, "bad search request")
            return
        await self._answer(stream, peer, message)

    async def _answer(self, stream: NodeStream, peer: bytes, message: SearchMessage) -> None:
        if isinstance(message, Query):
            async for entries in self.answer_query(message, peer):
                for batch in result_batches(message.id, entries):
                    stream.send(encode_message(batch))
            stream.send(encode_message(ResultBatch(message.id, (), last=True)))
        elif isinstance(message, Store):
            stream.send(encode_message(await self.store(message, peer)))
        elif isinstance(message, SupernodeAsk):
            host = _peer_host(stream.channel)
            stream.send(encode_message(self.supernodes(message, peer, host)))
        else:
            self.bad_peer(peer)
            stream.reset(CloseCode.PROTOCOL_ERROR, "not a search request")
            return
        stream.close()


def _peer_host(channel: NodeChannel) -> str:
    transport = channel.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if peer else ""


async def channel_to(host: ChannelHost, address: tuple[str, int], key: bytes | None) -> NodeChannel:
    """An open channel to the node ``key`` (reused when one is up), else a new dial."""
    kept = host.channel_to(key) if key is not None else None
    return kept or await host.dial(address[0], address[1], expected=key)


async def ask(
    host: ChannelHost,
    address: tuple[str, int],
    key: bytes | None,
    request: SearchMessage,
    *,
    within: float,
) -> AsyncIterator[tuple[bytes, SearchMessage]]:
    """Send one request; yield ``(answering key, message)`` until the answer ends or the
    time is up. Errors end the iteration (the caller sees fewer answers, never a crash);
    a malformed answer raises :class:`SearchProtocolError` so the caller can score it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    try:
        async with asyncio.timeout_at(deadline):
            channel = await channel_to(host, address, key)
    except (OSError, ChannelError, TimeoutError) as exc:
        log.debug("no search channel to %s: %s", address, exc)
        return
    peer = channel.peer_key
    assert peer is not None
    stream = channel.open_stream(PROTOCOL)
    try:
        stream.send(encode_message(request))
        stream.close()
        for _ in range(MAX_ANSWERS):
            try:
                async with asyncio.timeout_at(deadline):
                    data = await stream.receive()
            except TimeoutError:
                return
            if data is None:
                return
            yield peer, decode_message(data)
    except (ChannelError, ConnectionError) as exc:
        log.debug("search request to %s failed: %s", address, exc)
    finally:
        if not stream.ended_by_peer:
            with contextlib.suppress(ChannelError):
                stream.reset(CloseCode.NORMAL, "done")
