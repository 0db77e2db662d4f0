"""Hostile or mismatched MSE traffic against one servent listening port.

Random bytes, an MSE handshake for a torrent the node does not have, and a
plaintext handshake to a node that requires encryption are each cut off
without harm; a proper peer then downloads the torrent from the same port.
"""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path

import pytest

from interop.reference_clients import LOOPBACK, create_torrent_with_libtorrent, write_payload
from servent.codec.metainfo import parse_torrent
from servent.net.engine import EngineConfig, SwarmEngine
from servent.proto.mse import EncryptionPolicy, MseInitiator

pytestmark = pytest.mark.e2e

DEADLINE = 20.0
SIZE = 512 * 1024 + 5


async def closed_after(port: int, first: bytes, mse: MseInitiator | None = None) -> bool:
    """Send ``first`` (and play ``mse`` if given); True when the node closes the
    connection before the deadline."""
    reader, writer = await asyncio.open_connection(LOOPBACK, port)
    try:
        writer.write(first)
        async with asyncio.timeout(DEADLINE):
            while data := await reader.read(65536):
                if mse is not None and mse.result is None:
                    mse.receive_data(data)  # the node's DH key: answer with req1/SKEY
                    writer.write(mse.data_to_send())
        return True
    except ConnectionError:
        return True
    except TimeoutError:
        return False
    finally:
        writer.close()


@pytest.mark.parametrize(
    ("setting", "behaviour"),
    [
        ("enabled", "random bytes"),
        ("enabled", "MSE for an unknown torrent"),
        ("required", "plaintext handshake"),
    ],
)
async def test_bad_stream_is_cut_off_and_the_port_keeps_serving(
    tmp_path: Path, setting: str, behaviour: str
) -> None:
    data = write_payload(tmp_path / "seed" / "payload.bin", SIZE, seed=31)
    meta = parse_torrent(
        create_torrent_with_libtorrent(tmp_path / "seed" / "payload.bin", version="v1")
    )
    async with (
        SwarmEngine(EngineConfig(listen_host=LOOPBACK, encryption=setting)) as seeder,
        SwarmEngine(EngineConfig(listen_host=LOOPBACK, encryption=setting)) as leecher,
    ):
        await seeder.add_torrent(meta, tmp_path / "seed")
        mse = None
        if behaviour == "random bytes":
            first = os.urandom(4096)
        elif behaviour == "MSE for an unknown torrent":
            unknown = os.urandom(20)
            mse = MseInitiator(unknown, policy=EncryptionPolicy.REQUIRED, rng=random.Random(3))
            first = mse.data_to_send()
        else:
            first = (
                b"\x13BitTorrent protocol"
                + bytes(8)
                + meta.wire_info_hash
                + b"-XX0001-abcdefghijkl"
            )
        assert await closed_after(seeder.port, first, mse), f"{behaviour} was not cut off"
        assert seeder.listener is not None and not seeder.listener._pending
        session = await leecher.add_torrent(meta, tmp_path / "out", peers=[(LOOPBACK, seeder.port)])
        await asyncio.wait_for(session.wait_complete(), DEADLINE)
    assert (tmp_path / "out" / "payload.bin").read_bytes() == data
