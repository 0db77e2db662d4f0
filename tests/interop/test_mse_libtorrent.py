"""servent's MSE initiator against a libtorrent seeder that requires RC4 encryption:
the handshake completes and libtorrent's BitTorrent handshake arrives decrypted."""

from __future__ import annotations

import asyncio
import random
import time
import warnings
from pathlib import Path

import libtorrent as lt
import pytest

from servent.proto.mse import CRYPTO_RC4, EncryptionPolicy, MseInitiator

pytestmark = pytest.mark.interop

DEADLINE = 20.0


def forced_encryption_seeder(tmp_path: Path) -> tuple[lt.session, bytes]:
    payload = tmp_path / "payload.bin"
    payload.write_bytes(bytes(range(256)) * 64)
    with warnings.catch_warnings():  # file_storage API: deprecated in 2.1, still exact
        warnings.simplefilter("ignore", DeprecationWarning)
        files = lt.file_storage()
        lt.add_files(files, str(payload))
        creator = lt.create_torrent(files, 16384, lt.create_torrent.v1_only)
    lt.set_piece_hashes(creator, str(tmp_path))
    info = lt.torrent_info(lt.bdecode(lt.bencode(creator.generate())))
    session = lt.session(
        {
            "listen_interfaces": "127.0.0.1:0",
            "enable_dht": False,
            "enable_lsd": False,
            "enable_upnp": False,
            "enable_natpmp": False,
            "dht_bootstrap_nodes": "",
            "listen_system_port_fallback": False,
            "in_enc_policy": 0,  # pe_forced
            "out_enc_policy": 0,
            "allowed_enc_level": 2,  # pe_rc4 (1 is plaintext, 3 both)
        }
    )
    params = lt.add_torrent_params()
    params.ti = info
    params.save_path = str(tmp_path)
    params.flags |= lt.torrent_flags.seed_mode
    handle = session.add_torrent(params)
    deadline = time.monotonic() + DEADLINE
    while (st := handle.status()).state != lt.torrent_status.seeding or st.paused:
        # libtorrent rejects incoming peers ("no active torrents") until it runs
        assert time.monotonic() < deadline, "libtorrent never started seeding"
        session.wait_for_alert(100)
        session.pop_alerts()
    return session, bytes(info.info_hashes().v1.to_bytes())


async def test_mse_required_handshake_with_libtorrent(tmp_path: Path) -> None:
    session, info_hash = forced_encryption_seeder(tmp_path)
    try:
        handshake = (
            b"\x13BitTorrent protocol"
            + b"\x00" * 5
            + b"\x10\x00\x00"
            + info_hash
            + b"-SV0001-abcdefghijkl"
        )
        mse = MseInitiator(
            info_hash,
            rng=random.Random(1),
            policy=EncryptionPolicy.REQUIRED,
            initial_payload=handshake,
        )
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", session.listen_port()), DEADLINE
        )
        try:
            writer.write(mse.data_to_send())
            received = b""
            async with asyncio.timeout(DEADLINE):
                while mse.result is None or len(received) < 68:
                    data = await reader.read(4096)
                    assert data, "libtorrent closed the connection"
                    if mse.result is None:
                        mse.receive_data(data)
                        writer.write(mse.data_to_send())
                        if mse.result is not None:
                            received = mse.result.received
                    else:
                        assert mse.result.decrypt is not None
                        received += mse.result.decrypt(data)
            assert mse.result.crypto == CRYPTO_RC4
            assert received[:20] == b"\x13BitTorrent protocol"
            assert received[28:48] == info_hash
        finally:
            writer.close()
    finally:
        del session
