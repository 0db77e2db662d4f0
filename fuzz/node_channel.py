"""Fuzz the node channel, handshake and frames: ``python -m fuzz.node_channel --runs N``.

The corpus holds the two byte streams of a real channel between fixed keys
(fixed ephemerals too), with streams opened, messages, a ping, a reset and a
goodbye; the target rebuilds the same side with the same keys, so a mutated
stream keeps its valid prefix and the parser gets past the handshake into
the frames. The first byte of an input picks the side (even: the responder
reads it, odd: the initiator) and how the stream is chunked. Whatever the
input, a side that completes the handshake must have authenticated the one
peer it can be talking to.
"""

from __future__ import annotations

import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from fuzz import run
from servent.proto.channel import ChannelConnection, LocalKeys, Phase

CHUNKS = (1, 5, 64, 1 << 16)
PROTOCOLS = frozenset({"servent/echo/1"})


def _keys(seed: int) -> LocalKeys:
    identity = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return LocalKeys.create(identity, X25519PrivateKey.from_private_bytes(bytes([seed + 1]) * 32))


CLIENT, SERVER = _keys(1), _keys(5)


def _side(initiator: bool) -> ChannelConnection:
    keys, seed = (CLIENT, 3) if initiator else (SERVER, 7)
    return ChannelConnection(
        keys,
        initiator=initiator,
        now=0.0,
        protocols=PROTOCOLS,
        ephemeral=X25519PrivateKey.from_private_bytes(bytes([seed]) * 32),
    )


def _transcript() -> tuple[bytes, bytes]:
    """What the client and the server sent each other."""
    client, server = _side(True), _side(False)
    to_server, to_client = bytearray(), bytearray()

    def exchange() -> None:
        for _ in range(5):
            out, back = client.data_to_send(), server.data_to_send()
            to_server.extend(out)
            to_client.extend(back)
            server.receive_data(out, 0.0)
            client.receive_data(back, 0.0)

    exchange()
    stream = client.open_stream("servent/echo/1")
    client.send_message(stream, b"hello")
    other = client.open_stream("servent/unknown/1")
    exchange()
    server.send_message(stream, b"hello back")
    server.reset_stream(stream, 0, "done")
    client.handle_timer(30.0)  # a keep-alive PING
    server.handle_timer(30.0)
    exchange()
    assert other not in client._streams  # the server reset it: unknown protocol
    client.close(5, "bye")
    exchange()
    return bytes(to_server), bytes(to_client)


def _corpus() -> list[bytes]:
    to_server, to_client = _transcript()
    return [b"\x00" + to_server, b"\x03" + to_client, b"\x04" + to_server]


def target(data: bytes) -> None:
    if not data:
        return
    selector, stream = data[0], data[1:]
    chunk = CHUNKS[(selector >> 1) % len(CHUNKS)]
    side = _side(initiator=selector % 2 == 1)
    opened = False
    for start in range(0, len(stream), chunk):
        side.receive_data(stream[start : start + chunk], 1.0)
        if side.initiator and side.phase is Phase.OPEN and not opened:
            opened = True  # the streams the client of the transcript opened, in order
            side.open_stream("servent/echo/1")
            side.open_stream("servent/unknown/1")
        side.data_to_send()
        while side.next_event() is not None:
            pass
        if side.phase is Phase.CLOSED:
            break
    expected = SERVER.public_key if side.initiator else CLIENT.public_key
    if side.peer_key is not None and side.peer_key != expected:
        raise AssertionError("a mutated stream authenticated another node")
    if side.error is not None:
        raise side.error  # a ChannelError: counted as refused input
    if side.phase is Phase.OPEN and len(side._in) > 70_000:
        raise AssertionError("receive buffer grew beyond one frame")


CORPUS = _corpus()

if __name__ == "__main__":
    sys.exit(run("node_channel", target, CORPUS))
