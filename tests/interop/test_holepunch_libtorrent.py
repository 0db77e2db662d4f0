"""BEP 55 ``ut_holepunch`` with libtorrent as the middle peer, on loopback.

Two servent peers connected to one libtorrent peer: a rendezvous that one
servent peer sends names the other; libtorrent answers with a ``connect``
to both (our messages parse in libtorrent and its answers in servent).  A
rendezvous with an address libtorrent has no connection to comes back as an
error.  libtorrent's rendezvous and connect messages leave out the error code
(8 bytes, not BEP 55's 12), which this test caught.  (No NAT on loopback:
the NAT lab proves the punch itself.)
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from reference_clients import (
    LOOPBACK,
    create_torrent_with_libtorrent,
    libtorrent_peer,
    wait_until,
    write_payload,
)

from servent.codec.metainfo import parse_torrent
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.holepunch_peers import HolePunching
from servent.net.swarm_peer import SwarmPeer
from servent.net.torrent_session import TorrentSession
from servent.proto.holepunch import ErrorCode

pytestmark = pytest.mark.interop

SLOW = 16 * 1024


def punching(session: TorrentSession) -> HolePunching:
    found = session.extensions.holepunch
    assert found is not None
    return found


def libtorrent_in(session: TorrentSession, port: int) -> SwarmPeer | None:
    return next((p for p in session.peers.values() if p.dialled == (LOOPBACK, port)), None)


async def test_libtorrent_relays_a_servent_rendezvous(tmp_path: Path) -> None:
    write_payload(tmp_path / "seed" / "payload.bin", 2 * 1024 * 1024, seed=55)
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "payload.bin", version="v1")
    meta = parse_torrent(torrent)
    # Over uTP, as BEP 55 means: libtorrent finds the target by the address it sees the
    # connection at, which for uTP is the listening port (for TCP an ephemeral one).
    config = EngineConfig(listen_host=LOOPBACK, utp=True, utp_preference="prefer-utp")
    async with SwarmEngine(config) as first, SwarmEngine(config) as second:
        with libtorrent_peer(enable_outgoing_utp=True, enable_incoming_utp=True) as hub:
            hub.add_torrent(torrent, tmp_path / "hub", seed=False, download_limit=SLOW)
            a = await first.add_torrent(meta, tmp_path / "a", peers=[(LOOPBACK, hub.port)])
            b = await second.add_torrent(meta, tmp_path / "b", peers=[(LOOPBACK, hub.port)])
            await wait_until(
                lambda: all(
                    (p := libtorrent_in(s, hub.port)) is not None and punching(s).supports(p)
                    for s in (a, b)
                ),
                "both connected to libtorrent, which announces ut_holepunch",
            )
            relay = libtorrent_in(a, hub.port)
            assert relay is not None
            asked = [0.0]

            def introduced() -> bool:
                """Ask (again every 3 s: libtorrent may not have settled B's handshake yet)."""
                if time.monotonic() - asked[0] > 3.0:
                    asked[0] = time.monotonic()
                    punching(a).ask_rendezvous(relay, (LOOPBACK, second.port))
                return punching(a).connects >= 1 and punching(b).connects >= 1

            await wait_until(introduced, "connect messages to both ends")
            early = set(punching(a).errors)  # an ask before libtorrent read B's handshake
            assert early <= {ErrorCode.NO_SUPPORT}, early
            punching(a).errors.clear()
            punching(a).ask_rendezvous(relay, (LOOPBACK, 9))
            await wait_until(lambda: punching(a).errors, "an error for an unknown peer")
            assert punching(a).errors[0] in (ErrorCode.NO_SUCH_PEER, ErrorCode.NOT_CONNECTED)
