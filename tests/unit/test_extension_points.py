"""BEP 10 extensions are registrations: a test-only extension, registered like
ut_metadata and ut_pex, is announced and exchanged between two in-memory
connections through the same per-torrent dispatch a torrent session uses."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from servent.codec.bencode import BValue
from servent.net.extension_points import (
    PEER_EXTENSIONS,
    ExtensionCatalogue,
    PeerExtension,
    TorrentContext,
    peer_extension,
)
from servent.net.peer_extensions import TorrentExtensions
from servent.net.peer_session import PeerSession
from servent.net.swarm_peer import SwarmPeer
from servent.proto.peerwire import (
    Event,
    ExtensionHandshake,
    ExtensionHandshakeReceived,
    ExtensionMessage,
    PeerConnection,
)

ECHO = "x_test_echo"
INFO = b"d6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:" + b"\0" * 20 + b"e"
INFO_HASH = b"\x11" * 20


class Echo(PeerExtension):
    """Answers every message with it in capitals; says hello in its handshake field."""

    def __init__(self, torrent: TorrentContext) -> None:
        self.torrent = torrent
        self.hellos: list[BValue] = []
        self.heard: list[bytes] = []
        self.closed = 0

    def handshake_fields(self) -> Mapping[str, BValue]:
        return {"x_test_hello": b"hi"}

    def on_handshake(self, peer: SwarmPeer, handshake: ExtensionHandshake, now: float) -> None:
        self.hellos.append(handshake.fields.get(b"x_test_hello"))

    def on_message(self, peer: SwarmPeer, payload: bytes, now: float) -> None:
        self.heard.append(payload)
        if payload != payload.upper():
            peer.session.conn.send_extension(ECHO, payload.upper())

    def peer_closed(self, peer: SwarmPeer) -> None:
        self.closed += 1


@pytest.fixture
def echo_registered() -> Iterator[None]:
    peer_extension(ECHO)(Echo)
    try:
        yield
    finally:
        PEER_EXTENSIONS.unregister(ECHO)


class _Side:
    """One end: a torrent's extensions, a sans-IO connection, its session and peer."""

    def __init__(self, *, initiator: bool) -> None:
        self.extensions = TorrentExtensions(INFO, add_peers=lambda _found: None)
        self.conn = PeerConnection(
            peer_id=(b"-XA" if initiator else b"-XB") + b"0" * 17,
            info_hash=INFO_HASH,
            num_pieces=1,
            initiator=initiator,
            now=0.0,
            extensions=self.extensions.registry,
        )
        self.session = PeerSession(self.conn, handler=self)  # no transport: bytes moved here
        self.peer = SwarmPeer(self.session, 1, 0.0, dialled=None)

    @property
    def echo(self) -> Echo:
        handler = self.extensions.handler(ECHO)
        assert isinstance(handler, Echo)
        return handler

    def peer_events(self, session: PeerSession, events: list[Event]) -> None:
        raise AssertionError("events are routed by the test")

    def peer_closed(self, session: PeerSession) -> None:
        self.extensions.peer_closed(self.peer)

    def receive(self, data: bytes) -> None:
        self.conn.receive_data(data, 0.0)
        while (event := self.conn.next_event()) is not None:
            if isinstance(event, ExtensionHandshakeReceived | ExtensionMessage):
                self.extensions.on_event(self.peer, event, 0.0)


def _pump(a: _Side, b: _Side) -> None:
    for _ in range(10):
        to_b, to_a = a.conn.data_to_send(), b.conn.data_to_send()
        if not to_a and not to_b:
            return
        if to_b:  # (b"" would be the end of the stream)
            b.receive(to_b)
        if to_a:
            a.receive(to_a)
    raise AssertionError("the connections kept talking")


async def test_a_registered_extension_is_announced_and_exchanged(echo_registered: None) -> None:
    a, b = _Side(initiator=True), _Side(initiator=False)
    _pump(a, b)  # the wire handshakes
    for side in (a, b):
        side.conn.send_extension_handshake(side.extensions.handshake_fields())
    _pump(a, b)
    for side, other in ((a, b), (b, a)):
        remote = side.conn.remote_extensions
        assert remote is not None
        # Announced beside the built-in extensions, on the id the other side chose.
        assert remote.extensions[ECHO] == other.extensions.registry.local_id(ECHO)
        assert {"ut_metadata", "ut_pex"} <= set(remote.extensions)
        assert side.echo.hellos == [b"hi"]
    a.conn.send_extension(ECHO, b"ping")
    _pump(a, b)
    assert (b.echo.heard, a.echo.heard) == ([b"ping"], [b"PING"])
    assert a.extensions.metadata_pieces_served == 0  # the built-ins saw nothing
    a.extensions.peer_closed(a.peer)
    assert a.echo.closed == 1


def test_a_factory_may_decline_a_torrent_and_then_nothing_is_announced() -> None:
    catalogue = ExtensionCatalogue()
    catalogue.register("x_public_only", lambda t: None if t.private else PeerExtension())
    public = TorrentExtensions(INFO, add_peers=lambda _f: None, catalogue=catalogue)
    private = TorrentExtensions(INFO, add_peers=lambda _f: None, catalogue=catalogue, pex=False)
    assert public.registry.local_id("x_public_only") == 1
    assert private.registry.local_id("x_public_only") is None
    assert "x_public_only" not in private.handlers


def test_names_and_fixed_ids_are_registered_once() -> None:
    catalogue = ExtensionCatalogue()
    catalogue.register("x_auto", lambda _t: PeerExtension())
    catalogue.register("x_fixed", lambda _t: PeerExtension(), local_id=1)
    with pytest.raises(ValueError, match="twice"):
        catalogue.register("x_fixed", lambda _t: PeerExtension())
    with pytest.raises(ValueError, match="taken"):
        catalogue.register("x_other", lambda _t: PeerExtension(), local_id=1)
    with pytest.raises(ValueError):
        catalogue.register("", lambda _t: PeerExtension())
    # The fixed id is kept even though the automatic one was registered first.
    _handlers, registry = catalogue.build(TorrentContext(INFO, lambda _f: None))
    assert registry.local_id("x_fixed") == 1 and registry.local_id("x_auto") == 2


def test_the_built_in_extensions_register_themselves() -> None:
    assert "ut_metadata" in PEER_EXTENSIONS and "ut_pex" in PEER_EXTENSIONS
    assert "ut_holepunch" in PEER_EXTENSIONS  # BEP 55 (net/holepunch_peers.py)
    assert "sv_nodes" in PEER_EXTENSIONS  # torrent peers as nodes (net/node_peers.py)
    extensions = TorrentExtensions(INFO, add_peers=lambda _f: None)
    assert dict(extensions.registry.local_map) == {
        "ut_pex": 1,
        "ut_metadata": 2,
        "ut_holepunch": 3,
        "sv_nodes": 4,
    }
    assert extensions.handshake_fields("127.0.0.1") == {
        "metadata_size": len(INFO),
        "yourip": bytes([127, 0, 0, 1]),
    }
