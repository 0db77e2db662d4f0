"""Messages to one node and to everyone: the node's face for ``servent send/broadcast/messages``.

:class:`Messenger` composes the direct-message outbox and inbox
(:mod:`.direct_messages`), the gossip mesh (:mod:`.broadcasts`), the address
book and block list of the :class:`~servent.node.message_store.MessageStore`,
keeps node channels open to the node's contacts, and finds further gossip
neighbours with no contact at all (:mod:`.gossip_peers`: the DHT rendezvous,
supernodes, peer exchange).  :class:`NodeMessaging` is
the small part of :class:`~servent.node.node.Node` that owns it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from servent.codec.node_id import format_node_id, parse_node_id
from servent.errors import NodeError
from servent.net.channel_host import ChannelHost
from servent.net.node_channel import NodeChannel
from servent.node.broadcasts import Broadcasts
from servent.node.direct_messages import DirectMessages, MessagingError, RateLimitedError
from servent.node.events import MessageDelivered, MessageReceived, NodeEvent
from servent.node.gossip_peers import MeshPeers
from servent.node.identity import NodeIdentity
from servent.node.message_store import Contact, MessageStore, StoredMessage

if TYPE_CHECKING:
    from servent.net.dht_driver import DhtDriver
    from servent.node.config import Config
    from servent.node.search_service import SearchService

__all__ = [
    "MessagingError",
    "Messenger",
    "NodeMessaging",
    "RateLimitedError",
    "message_json",
]

log = logging.getLogger(__name__)

#: Channels kept open to contacts for the gossip mesh, at most.
MESH_TARGET = 8
#: How often the contacts are checked; a contact that could not be reached waits
#: from ``FIRST_REDIAL`` doubling to ``MAX_REDIAL`` before the next dial.
UPKEEP_INTERVAL = 5.0
FIRST_REDIAL = 5.0
MAX_REDIAL = 300.0
DIAL_TIMEOUT = 30.0
MAX_NAME = 64

Emit = Callable[[NodeEvent], None]
Address = tuple[str, int]


def message_json(message: StoredMessage, own_key: bytes, names: dict[bytes, str]) -> dict[str, Any]:
    """A message as the API and ``servent messages --json`` show it (the issue's keys
    first, then what the web UI and ``--outbox`` need)."""
    sender = own_key if message.direction == "out" else message.peer
    direct = message.kind == "direct"
    recipient = (message.peer if message.direction == "out" else own_key) if direct else None
    return {
        "from": format_node_id(sender),
        "name": names.get(sender),
        "to": None if recipient is None else format_node_id(recipient),
        "channel": None if direct else (message.channel or ""),
        "text": message.text,
        "time": message.time,
        "id": message.id.hex(),
        "verified": True,
        "direction": message.direction,
        "kind": message.kind,
        "read": message.read,
        "delivered": message.delivered,
        "failed": message.failed,
        "attempts": message.attempts,
        "next_attempt": message.next_attempt if direct and message.direction == "out" else None,
        "last_error": message.last_error,
    }


def contact_json(contact: Contact, unread: int, connected: bool) -> dict[str, Any]:
    return {
        "id": format_node_id(contact.id),
        "name": contact.name,
        "added": contact.added,
        "unread": unread,
        "connected": connected,
    }


def node_key(node_id: str) -> bytes:
    """The key of a node ID typed by a user (a clear :class:`NodeIdError` when it is not one)."""
    return parse_node_id(node_id)


class Messenger:
    """Direct messages, broadcasts, contacts and blocks of one running node."""

    def __init__(
        self,
        host: ChannelHost,
        store: MessageStore,
        identity: NodeIdentity,
        emit: Emit,
        *,
        own_name: str | None = None,
        clock: Callable[[], float] = time.time,
        dht: Callable[[], DhtDriver | None] = lambda: None,
        own_address: Callable[[], Address | None] = lambda: None,
        supernodes: Callable[[], Iterable[tuple[bytes, Address]]] = tuple,
    ) -> None:
        self.host = host
        self.store = store
        self.identity = identity
        self.own_name = own_name
        self._emit = emit
        self._clock = clock
        self.direct = DirectMessages(
            host, store, on_received=self._received, on_delivered=self._delivered, clock=clock
        )
        self.broadcasts = Broadcasts(host, store, identity, on_received=self._received, clock=clock)
        self.mesh_peers = MeshPeers(
            host, self.broadcasts, dht=dht, own_address=own_address, supernodes=supernodes,
            protected=lambda: frozenset(self._names), clock=clock,
        )  # fmt: skip
        self._names: dict[bytes, str] = {}
        self._redial: dict[bytes, tuple[float, float]] = {}  # key -> (next try, wait)
        self._wake_upkeep = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._names = {c.id: c.name for c in self.store.contacts()}
        blocked = self.store.blocked()
        self.direct.blocked = blocked
        self.broadcasts.router.blocked = set(blocked)
        self.host.on_channel_open.append(self._channel_open)
        self.direct.start()
        self.broadcasts.start()
        self.mesh_peers.start()
        self._spawn(self._upkeep())

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.host.on_channel_open.remove(self._channel_open)
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.mesh_peers.close()
        await self.broadcasts.close()
        await self.direct.close()

    def _spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- messages ---------------------------------------------------------------------

    async def send(self, node_id: str, text: str) -> dict[str, Any]:
        message = await self.direct.send(node_key(node_id), text)
        return self.to_json(message)

    async def wait_delivered(self, message_id: str, within: float) -> dict[str, Any]:
        ident = _message_id(message_id)
        await self.direct.wait_delivered(ident, within)
        stored = self.store.get(ident)
        if stored is None:
            raise NodeError(f"no message {message_id}")
        return self.to_json(stored)

    async def broadcast(self, text: str, channel: str = "") -> dict[str, Any]:
        return self.to_json(await self.broadcasts.publish(text, channel))

    def channels(self) -> list[str]:
        """Broadcast channels this node keeps and relays (``""``: everyone)."""
        return self.broadcasts.followed()

    async def follow(self, channel: str) -> bool:
        return await self.broadcasts.follow(channel)

    async def unfollow(self, channel: str) -> bool:
        return await self.broadcasts.unfollow(channel)

    def messages(
        self,
        *,
        direction: str | None = None,
        peer: str | None = None,
        channel: str | None = None,
        since: float | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """Messages oldest first; ``peer`` keeps one conversation (direct messages with
        that node), ``channel`` one broadcast channel (``""``: the whole network)."""
        found = self.store.messages(
            direction=direction,
            since=since,
            limit=limit,
            peer=None if peer is None else node_key(peer),
            channel=channel,
        )
        return [self.to_json(m) for m in found]

    def outbox(self) -> list[dict[str, Any]]:
        return [self.to_json(m) for m in self.store.outbox()]

    def mark_read(self, peer: str | None = None, channel: str | None = None) -> None:
        if channel is not None:
            self.store.mark_read_channel(channel)
        else:
            self.store.mark_read(None if peer is None else node_key(peer))

    def unread(self) -> dict[str, Any]:
        direct = {format_node_id(k): n for k, n in self.store.unread_counts().items()}
        return {"direct": direct, "channels": self.store.unread_channels()}

    def to_json(self, message: StoredMessage) -> dict[str, Any]:
        names = dict(self._names)
        if self.own_name:
            names.setdefault(self.identity.public_key, self.own_name)
        return message_json(message, self.identity.public_key, names)

    def announce(self, message: StoredMessage) -> None:
        """Tell front ends of a message stored another way (a network's broadcast)."""
        self._received(message)

    def _received(self, message: StoredMessage) -> None:
        self._emit(MessageReceived(message=self.to_json(message)))

    def _delivered(self, message_id: bytes, recipient: bytes, when: float) -> None:
        self._emit(
            MessageDelivered(id=message_id.hex(), to=format_node_id(recipient), delivered=when)
        )

    # -- contacts and blocks -------------------------------------------------------------

    def contacts(self) -> list[dict[str, Any]]:
        unread = self.store.unread_counts()
        return [
            contact_json(c, unread.get(c.id, 0), self.host.channel_to(c.id) is not None)
            for c in self.store.contacts()
        ]

    def add_contact(self, node_id: str, name: str | None = None) -> dict[str, Any]:
        key = node_key(node_id)
        if key == self.identity.public_key:
            raise MessagingError("this node's own ID cannot be a contact")
        shown = (name or "").strip() or node_id.strip().lower()[:12]
        if len(shown) > MAX_NAME or not shown.isprintable():
            raise MessagingError(f"a contact name is 1 to {MAX_NAME} printable characters")
        self.store.add_contact(key, shown, self._clock())
        self._names[key] = shown
        self._redial.pop(key, None)
        self._wake_upkeep.set()
        contact = next(c for c in self.store.contacts() if c.id == key)
        return contact_json(contact, 0, self.host.channel_to(key) is not None)

    def remove_contact(self, node_id: str) -> bool:
        key = node_key(node_id)
        self._names.pop(key, None)
        return self.store.remove_contact(key)

    def block(self, node_id: str) -> None:
        key = node_key(node_id)
        self.store.block(key, self._clock())
        self.direct.blocked.add(key)
        self.broadcasts.router.blocked.add(key)

    def unblock(self, node_id: str) -> bool:
        key = node_key(node_id)
        self.direct.blocked.discard(key)
        self.broadcasts.router.blocked.discard(key)
        return self.store.unblock(key)

    def blocked(self) -> list[str]:
        return sorted(format_node_id(key) for key in self.store.blocked())

    def network(self) -> dict[str, Any]:
        """Gossip neighbours and the outbox size (``GET /api/messaging``)."""
        return {
            "id": self.identity.node_id,
            "neighbours": sorted(format_node_id(k) for k in self.broadcasts.neighbours),
            "mesh": len(self.broadcasts.router.mesh),
            "outbox": len(self.direct.pending()),
            "channels": self.channels(),
            "channel_neighbours": {
                name: len(self.broadcasts.router.subscribers(name.encode("utf-8")))
                for name in self.channels()
            },
            "known": self.broadcasts.book.statistics()["known"],
        }

    # -- the mesh: channels to contacts ----------------------------------------------------

    def _channel_open(self, channel: NodeChannel) -> None:
        key = channel.peer_key
        if key is not None and channel.close_event is None:
            self._redial.pop(key, None)
            self.direct.recipient_reachable(key)

    def network_ready(self) -> None:
        """The DHT is up: contacts can be looked up now."""
        self._redial.clear()
        self._wake_upkeep.set()
        self.mesh_peers.network_ready()

    async def _upkeep(self) -> None:
        while True:
            self._dial_contacts()
            self._wake_upkeep.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(UPKEEP_INTERVAL):
                    await self._wake_upkeep.wait()

    def _dial_contacts(self) -> None:
        now = self._clock()
        open_count = sum(1 for _ in self.host.channels)
        for contact in self.store.contacts():
            if open_count >= MESH_TARGET:
                return
            key = contact.id
            if self.host.channel_to(key) is not None:
                continue
            next_try, wait = self._redial.get(key, (0.0, FIRST_REDIAL / 2))
            if now < next_try:
                continue
            wait = min(MAX_REDIAL, wait * 2)
            self._redial[key] = (now + wait, wait)
            open_count += 1
            self._spawn(self._dial(key))

    async def _dial(self, key: bytes) -> None:
        try:
            async with asyncio.timeout(DIAL_TIMEOUT):
                await self.host.connect(key)
        except Exception as exc:  # unreachable contacts are normal: try later
            log.debug("contact %s not reached: %s", format_node_id(key), exc)


def _message_id(text: str) -> bytes:
    try:
        ident = bytes.fromhex(text)
    except ValueError:
        raise NodeError(f"a message ID is hexadecimal, got {text!r}") from None
    if len(ident) not in (16, 20):
        raise NodeError(f"a message ID is 32 or 40 hex characters, got {len(text)}")
    return ident


class NodeMessaging:
    """The messaging part of a :class:`~servent.node.node.Node` (a mixin)."""

    config: Config
    _channels: ChannelHost | None
    _identity: NodeIdentity | None
    _dht: DhtDriver | None
    search: SearchService

    def peer_address(self) -> Address | None:
        raise NotImplementedError

    def _known_supernodes(self) -> Iterable[tuple[bytes, Address]]:
        """Supernodes the search service knows: always-on nodes, good first neighbours."""
        return list(self.search.addresses.items())[:32]

    def _emit_event(self, event: NodeEvent) -> None:
        raise NotImplementedError

    def _init_messaging(self) -> None:
        self._messenger: Messenger | None = None

    @property
    def messenger(self) -> Messenger:
        """Direct messages, broadcasts and contacts (needs the node to listen)."""
        if self._messenger is None:
            raise MessagingError(
                "messaging is off: the node is not running or not listening for node channels"
            )
        return self._messenger

    async def _start_messaging(self) -> None:
        if self._channels is None or self._identity is None:
            return
        store = await asyncio.to_thread(MessageStore, self.config.data_dir)
        messenger = Messenger(
            self._channels, store, self._identity,
            self._emit_event, own_name=self.config.name,
            dht=lambda: self._dht, own_address=self.peer_address,
            supernodes=self._known_supernodes,
        )  # fmt: skip
        await messenger.start()
        self._messenger = messenger

    def _messaging_network_ready(self) -> None:
        if self._messenger is not None:
            self._messenger.network_ready()

    async def _stop_messaging(self) -> None:
        if self._messenger is not None:
            messenger, self._messenger = self._messenger, None
            await messenger.close()
            messenger.store.close()
