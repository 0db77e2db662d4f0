"""Two sans-IO node channel ends wired to each other in memory (aioquic's ``client_and_server``).

For tests of protocols that run over node channels: no sockets, no clock
but the one passed in, every byte moved by :func:`pump`.
"""

from __future__ import annotations

from collections.abc import Container

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from servent.proto.channel import (
    ChannelConfig,
    ChannelConnection,
    ChannelEvent,
    HandshakeComplete,
    LocalKeys,
)

__all__ = ["client_and_server", "drain_events", "new_keys", "pump"]

#: Rounds :func:`pump` allows before it decides the two ends never go quiet.
MAX_ROUNDS = 50


def new_keys() -> LocalKeys:
    return LocalKeys.create(Ed25519PrivateKey.generate())


def drain_events(conn: ChannelConnection) -> list[ChannelEvent]:
    """Every event the connection has queued, in order."""
    events = []
    while (event := conn.next_event()) is not None:
        events.append(event)
    return events


def pump(a: ChannelConnection, b: ChannelConnection, now: float = 0.0) -> None:
    """Move bytes both ways until neither end has anything to send."""
    for _ in range(MAX_ROUNDS):
        to_b, to_a = a.data_to_send(), b.data_to_send()
        if not to_b and not to_a:
            return
        b.receive_data(to_b, now)
        a.receive_data(to_a, now)
    raise AssertionError("the two channel ends never went quiet")


def client_and_server(
    *,
    protocols: Container[str] = frozenset(),
    config: ChannelConfig | None = None,
    client_keys: LocalKeys | None = None,
    server_keys: LocalKeys | None = None,
    now: float = 0.0,
) -> tuple[ChannelConnection, ChannelConnection]:
    """An initiator and a responder (serving ``protocols``) with the handshake done
    and its events consumed."""
    client = ChannelConnection(
        client_keys or new_keys(), initiator=True, now=now, protocols=protocols, config=config
    )
    server = ChannelConnection(
        server_keys or new_keys(), initiator=False, now=now, protocols=protocols, config=config
    )
    pump(client, server, now)
    for end in (client, server):
        events = drain_events(end)
        if not events or not isinstance(events[0], HandshakeComplete):
            raise AssertionError(f"handshake did not complete: {events}")
    return client, server
