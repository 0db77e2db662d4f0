"""libtorrent downloads from a servent port that also accepts node channels.

The listener's first-bytes sniffer stands in front of every connection: a
libtorrent peer forcing MSE (RC4) and one speaking plaintext must still be
told apart from node channels and download byte-identical files, while a
node channel runs on the same port at the same time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from reference_clients import (
    LOOPBACK,
    create_torrent_with_libtorrent,
    libtorrent_peer,
    write_payload,
)

from servent.codec.metainfo import parse_torrent
from servent.net import encrypted_transport
from servent.net.channel_host import ChannelHost
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.node_channel import NodeStream
from servent.proto.channel import LocalKeys

pytestmark = pytest.mark.interop

DEADLINE = 60.0
SIZE = 1024 * 1024 + 77
FORCED_RC4 = {"in_enc_policy": 0, "out_enc_policy": 0, "allowed_enc_level": 2}
PLAINTEXT = {"in_enc_policy": 2, "out_enc_policy": 2}


async def echo(stream: NodeStream) -> None:
    while (message := await stream.receive()) is not None:
        stream.send(message)


@pytest.mark.parametrize(("policy", "outcome"), [(FORCED_RC4, "rc4"), (PLAINTEXT, "plain")])
async def test_libtorrent_downloads_through_the_channel_sniffer(
    tmp_path: Path, policy: dict[str, int], outcome: str
) -> None:
    data = write_payload(tmp_path / "seed" / "payload.bin", SIZE, seed=23)
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "payload.bin", version="hybrid")
    host = ChannelHost(LocalKeys.create(Ed25519PrivateKey.generate()))
    host.protocols.register("servent/echo/1", echo)
    caller = ChannelHost(LocalKeys.create(Ed25519PrivateKey.generate()))
    before = encrypted_transport.handshake_outcomes.copy()
    async with SwarmEngine(EngineConfig(listen_host=LOOPBACK)) as engine:
        assert engine.listener is not None
        engine.listener.channel_acceptor = host
        session = await engine.add_torrent(parse_torrent(torrent), tmp_path / "seed")
        assert session.complete
        channel = await caller.dial(LOOPBACK, engine.port, expected=host.keys.public_key)
        with libtorrent_peer(**policy) as leecher:
            handle = leecher.add_torrent(torrent, tmp_path / "out", seed=False)
            leecher.connect(handle, LOOPBACK, engine.port)
            await leecher.wait_complete(handle, DEADLINE)
        stream = channel.open_stream("servent/echo/1")
        stream.send(b"still talking")
        async with asyncio.timeout(DEADLINE):
            assert await stream.receive() == b"still talking"
        await caller.close()
        await host.close()
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data
    assert encrypted_transport.handshake_outcomes[outcome] > before[outcome]
