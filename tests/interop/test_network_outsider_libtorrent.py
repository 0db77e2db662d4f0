"""A real BitTorrent client outside an invite-only network gets nothing.

libtorrent holds the network torrent's whole .torrent file (more than the
magnet) and dials the servent member's port, once forcing MSE/RC4 (with the
public info-hash as its SKEY, as every client does) and once in plaintext:
the member closes both before a byte of the torrent, so libtorrent receives
no piece and no bitfield.  A servent member with the swarm key downloads it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from reference_clients import LOOPBACK, libtorrent_peer

from network_nodes import address, fetch, folder, not_allowed, running_node

pytestmark = pytest.mark.interop

DEADLINE = 60.0
FORCED_RC4 = {"in_enc_policy": 0, "out_enc_policy": 0, "allowed_enc_level": 2}
PLAINTEXT = {"in_enc_policy": 2, "out_enc_policy": 2}


@pytest.mark.parametrize("policy", [FORCED_RC4, PLAINTEXT], ids=["rc4", "plaintext"])
async def test_libtorrent_with_the_torrent_file_gets_no_byte_a_member_gets_it_all(
    tmp_path: Path, policy: dict[str, int]
) -> None:
    async with running_node(tmp_path, "admin") as admin, running_node(tmp_path, "bob") as bob:
        admin.networks.create("club")
        await bob.networks.join(admin.networks.invite("club")["invite"])
        shared = folder(tmp_path, "archive", 600_000)
        share = await admin.networks.share("club", str(shared))
        torrent = admin._metainfo[share["id"]].to_bytes()
        host, port = address(admin)
        with libtorrent_peer(**policy) as outsider:
            handle = outsider.add_torrent(torrent, tmp_path / "outsider", seed=False)
            for _ in range(3):  # three attempts, each refused
                before = not_allowed(admin)
                outsider.connect(handle, host, port)
                deadline = time.monotonic() + DEADLINE
                while not_allowed(admin) <= before:
                    assert time.monotonic() < deadline, "the outsider's dial was not refused"
                    outsider.drain_alerts()
                    await asyncio.sleep(0.05)  # a bounded poll of the member's counter
            status = handle.status()
            assert status.total_payload_download == 0 and status.num_pieces == 0
            assert not any(status.pieces)
        found = await bob.networks.search("club", "archive")
        got = await fetch(bob, found[0]["magnet"], [(LOOPBACK, port)])
        deadline = time.monotonic() + DEADLINE
        while bob.torrent(got).progress < 1.0:
            assert time.monotonic() < deadline, "the member did not download"
            await asyncio.sleep(0.05)  # a bounded poll of in-process state
        received = Path(bob.config.effective_download_dir) / "archive" / "archive.bin"
        assert received.read_bytes() == (shared / "archive.bin").read_bytes()
