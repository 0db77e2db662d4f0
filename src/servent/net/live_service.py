"""A node's live broadcasts: the ``servent/live/1`` protocol, neighbours, discovery.

:class:`LiveService` keeps one :class:`~servent.net.live_session.LiveSession`
per broadcast this node takes part in, accepts the streams other nodes open,
and keeps each viewer connected to enough neighbours: it dials the live key's
address hint, the addresses neighbours tell it (``peers``), and what the DHT
knows under the broadcast's topic (``docs/live.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.codec.compact import Address
from servent.net.live_session import LiveSession, Neighbour
from servent.net.node_channel import NodeChannel, NodeStream
from servent.net.owned_tasks import cancel_and_wait
from servent.proto.channel import ChannelError, CloseCode
from servent.proto.live import (
    LiveError,
    format_live_key,
    live_topic,
    parse_live_key_with_hint,
)
from servent.proto.live_wire import (
    LIVE_PROTOCOL,
    MAX_WIRE_PIECE,
    Hello,
    decode_live_message,
    encode_live_message,
)

if TYPE_CHECKING:
    from servent.net.channel_host import ChannelHost
    from servent.net.dht_driver import DhtDriver

__all__ = ["LiveService"]

log = logging.getLogger(__name__)

#: Neighbours a viewer dials; neighbours a node accepts (the broadcaster: fewer).
DIALLED = 6
ACCEPTED = 16
BROADCASTER_ACCEPTS = 4
TICK = 0.5
HELLO_TIMEOUT = 10.0
#: An address that failed, was full or dropped us is not dialled again for this long ...
RETRY_AFTER = 20.0
#: ... or this long by a viewer left with no neighbour (it hears nothing, not even the end).
RETRY_ALONE_AFTER = 2.0
DHT_ANNOUNCE_EVERY = 300.0
DHT_LOOKUP_EVERY = 60.0
#: ... and this often while a viewer has no neighbour at all (joining).
DHT_LOOKUP_ALONE_EVERY = 5.0
#: An ended broadcast is kept this long (late neighbours still get its end), then dropped.
LINGER = 60.0
#: Node keys remembered by listening address (forgotten all at once beyond this).
MAX_KNOWN_NODES = 4096


class LiveService:
    """See the module docstring.  ``channels`` and ``dht`` are read when needed."""

    def __init__(
        self,
        channels: Callable[[], ChannelHost],
        own_address: Callable[[], Address | None],
        dht: Callable[[], DhtDriver | None] = lambda: None,
        *,
        broadcaster_accepts: int = BROADCASTER_ACCEPTS,
    ) -> None:
        self._channels = channels
        self._own_address = own_address
        self._dht = dht
        self.broadcaster_accepts = broadcaster_accepts
        self.sessions: dict[bytes, LiveSession] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._dialling: dict[bytes, set[Address]] = {}
        self._failed: dict[tuple[bytes, Address], float] = {}
        self._dht_times: dict[tuple[bytes, str], float] = {}
        self._address_keys: dict[Address, bytes] = {}
        self._started = False

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if self._started:
            return
        self._channels().protocols.register(LIVE_PROTOCOL, self._serve)
        self._started = True
        self._spawn(self._keep_neighbours(), "live-neighbours")

    async def close(self) -> None:
        for session in self.sessions.values():
            session.close()
        await cancel_and_wait(self._tasks)
        self._started = False

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the face ------------------------------------------------------------------------

    def broadcast(self, name: str = "") -> LiveSession:
        """A new broadcast with a key of its own."""
        self.start()
        key = Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes_raw()
        session = LiveSession(
            live_topic(public), public, key=key, name=name, clock=_clock, node_key=self._node_key()
        )
        self.sessions[session.topic] = session
        return session

    def publish(self, topic: bytes, data: bytes) -> list[int]:
        """Cut ``data`` into signed pieces of the broadcast ``topic``; their indices."""
        session = self.session(topic)
        if not session.is_broadcaster:
            raise LiveError("only the broadcaster writes to a broadcast")
        return [
            session.publish(data[at : at + MAX_WIRE_PIECE])
            for at in range(0, len(data), MAX_WIRE_PIECE)
        ]

    def live_key(self, topic: bytes) -> str:
        return format_live_key(self.session(topic).public_key, self._own_address())

    def watch(self, live_key: str) -> LiveSession:
        """Join the broadcast of ``live_key`` (the one already joined, if any)."""
        public, hint = parse_live_key_with_hint(live_key)
        topic = live_topic(public)
        session = self.sessions.get(topic)
        if session is None:
            self.start()
            session = LiveSession(topic, public, clock=_clock, node_key=self._node_key())
            self.sessions[topic] = session
        if hint is not None:
            session.add_known([hint])
        self._top_up(session)
        return session

    def leave(self, topic: bytes) -> None:
        """A broadcaster ends its broadcast (the signed end piece); a viewer leaves."""
        session = self.session(topic)
        if session.is_broadcaster and not session.ended:
            session.publish(b"")
        if not session.is_broadcaster:
            session.close()
            del self.sessions[topic]

    def session(self, topic: bytes) -> LiveSession:
        session = self.sessions.get(topic)
        if session is None:
            raise LiveError(f"no broadcast {topic.hex()} here")
        return session

    # -- streams -------------------------------------------------------------------------

    def _node_key(self) -> bytes:
        return self._channels().keys.public_key

    def _remember(self, address: Address, key: bytes | None) -> None:
        """Which node listens where, so a channel to it is reused, never doubled (the
        channel host closes a duplicate channel, and every stream on it)."""
        if key is not None:
            if len(self._address_keys) >= MAX_KNOWN_NODES:
                self._address_keys.clear()
            self._address_keys[address] = key

    async def _channel_to(self, address: Address) -> NodeChannel:
        host = self._channels()
        key = self._address_keys.get(address)
        channel = host.channel_to(key) if key is not None else None
        if channel is None:
            channel = await host.dial(*address)  # or the channel both ends keep
            self._remember(address, channel.peer_key)
        return channel

    def _port(self) -> int:
        own = self._own_address()
        return 0 if own is None else own[1]

    async def _serve(self, stream: NodeStream) -> None:
        """A stream another node opened: its hello names the broadcast."""
        try:
            async with asyncio.timeout(HELLO_TIMEOUT):
                raw = await stream.receive()
            hello = decode_live_message(raw or b"")
        except (TimeoutError, LiveError):
            stream.reset(CloseCode.PROTOCOL_ERROR, "a live stream starts with hello")
            return
        session = self.sessions.get(hello.topic) if isinstance(hello, Hello) else None
        key = stream.channel.peer_key
        if session is None or key in session.banned:
            stream.reset(CloseCode.NORMAL, "not in that broadcast")
            return
        assert isinstance(hello, Hello)
        await self._welcome(session, stream, hello)

    async def _welcome(self, session: LiveSession, stream: NodeStream, hello: Hello) -> None:
        """Answer a hello: run the stream, or (full) name other participants and close."""
        address = _listen_address(stream, hello.port)
        if address is not None:
            session.add_known([address])
            self._remember(address, stream.channel.peer_key)
        stream.send(encode_live_message(session.hello(self._port())))
        limit = self.broadcaster_accepts if session.is_broadcaster else ACCEPTED
        incoming = sum(1 for n in session.neighbours.values() if not n.outgoing)
        if incoming >= limit or session.ended:
            for message in session.refusal():
                stream.send(encode_live_message(message))
            stream.close()
            with contextlib.suppress(TimeoutError):  # returning resets: let it read first
                async with asyncio.timeout(HELLO_TIMEOUT):
                    while await stream.receive() is not None:
                        pass
            return
        neighbour = Neighbour(stream, address, outgoing=False, node_key=stream.channel.peer_key)
        await session.run(neighbour, hello)

    async def _dial(self, session: LiveSession, address: Address) -> None:
        host = self._channels()
        try:
            channel = await self._channel_to(address)
            key = channel.peer_key
            if key == host.keys.public_key or key in session.neighbour_keys() | session.banned:
                return
            stream = channel.open_stream(LIVE_PROTOCOL)
            stream.send(encode_live_message(session.hello(self._port())))
            async with asyncio.timeout(HELLO_TIMEOUT):
                raw = await stream.receive()
            hello = decode_live_message(raw) if raw is not None else None
            if not isinstance(hello, Hello) or hello.topic != session.topic:
                stream.reset(CloseCode.PROTOCOL_ERROR, "expected the hello of the broadcast")
                self._failed[(session.topic, address)] = _clock()
                return
            neighbour = Neighbour(stream, address, outgoing=True, node_key=channel.peer_key)
            await session.run(neighbour, hello)
        except (ChannelError, OSError, TimeoutError, LiveError) as exc:
            log.debug("live %s: cannot use %s: %s", session.topic.hex()[:8], address, exc)
        finally:
            self._dialling.get(session.topic, set()).discard(address)
            self._failed[(session.topic, address)] = _clock()  # full or over: wait to retry

    def _top_up(self, session: LiveSession) -> None:
        """Dial known addresses until the viewer has :data:`DIALLED` outgoing neighbours
        (after the end too, while pieces before it are missing)."""
        if session.is_broadcaster or (session.ended and not session.scheduler.lacks()):
            return
        dialling = self._dialling.setdefault(session.topic, set())
        connected = {n.address for n in session.neighbours.values()}
        outgoing = sum(1 for n in session.neighbours.values() if n.outgoing) + len(dialling)
        own = self._own_address()
        now = _clock()
        wait = RETRY_AFTER if session.neighbours else RETRY_ALONE_AFTER
        for address in sorted(session.known - connected - dialling):
            if outgoing >= DIALLED:
                break
            failed = self._failed.get((session.topic, address))
            if address == own or (failed is not None and now - failed < wait):
                continue
            dialling.add(address)
            outgoing += 1
            self._spawn(self._dial(session, address), "live-dial")

    async def _keep_neighbours(self) -> None:
        while True:
            await asyncio.sleep(TICK)
            for session in list(self.sessions.values()):
                if session.ended_at is not None and _clock() - session.ended_at > LINGER:
                    session.close()
                    del self.sessions[session.topic]
                    continue
                session.ask()  # requests that timed out go elsewhere
                self._top_up(session)
                self._use_dht(session)

    # -- DHT -----------------------------------------------------------------------------

    def _use_dht(self, session: LiveSession) -> None:
        dht, port = self._dht(), self._port()
        if dht is None:
            return
        now = _clock()
        if port and self._due(session.topic, "announce", DHT_ANNOUNCE_EVERY, now):
            self._spawn(
                self._dht_call(dht.announce(session.topic, port, on_peers=session.add_known)),
                "live-dht",
            )
        few = len(session.neighbours) < DIALLED and not session.is_broadcaster
        every = DHT_LOOKUP_EVERY if session.neighbours else DHT_LOOKUP_ALONE_EVERY
        if few and self._due(session.topic, "lookup", every, now):
            self._spawn(
                self._dht_call(dht.get_peers(session.topic, on_peers=session.add_known)),
                "live-dht",
            )

    def _due(self, topic: bytes, what: str, every: float, now: float) -> bool:
        last = self._dht_times.get((topic, what))
        if last is not None and now - last < every:
            return False
        self._dht_times[(topic, what)] = now
        return True

    @staticmethod
    async def _dht_call(work: Coroutine[Any, Any, object]) -> None:
        try:
            await work
        except Exception as exc:  # the DHT being down must not stop the broadcast
            log.debug("live DHT call failed: %s", exc)


def _clock() -> float:
    return time.monotonic()


def _listen_address(stream: NodeStream, port: int) -> Address | None:
    transport = stream.channel.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if not port or not isinstance(peer, tuple) or not peer:
        return None
    return str(peer[0]), port
