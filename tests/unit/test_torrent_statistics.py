"""TorrentStatistics.sources: the peers that delivered payload, a peer reached twice counted once.

Two connections to one peer (crossing dials: we dialled it while it dialled us)
are two addresses in ``downloaded_from`` but one source in the summary
``servent get`` prints.
"""

from __future__ import annotations

import random

from servent.codec.bitfield import Bitfield
from servent.net.torrent_config import swarm_statistics
from servent.proto.swarm import PeerState, SwarmCore
from servent.testing.swarm_network import SimLayout
from swarm_state import open_connection

LAYOUT = SimLayout(size=4 * 16384, piece_length=16384)


def _peer(address: tuple[str, int], peer_id: bytes, *, dialled: bool) -> PeerState:
    peer = PeerState(
        open_connection(b"L" * 20, LAYOUT.num_pieces), LAYOUT.num_pieces, 0.0,
        dialled=address if dialled else None, address=address,
    )  # fmt: skip
    peer.identity = (*address, peer_id)
    return peer


def _sources(peers: list[PeerState], closed: frozenset[bytes | str], web: int = 0) -> int:
    core = SwarmCore(
        LAYOUT, Bitfield(LAYOUT.num_pieces), wanted=range(4), rng=random.Random(1)
    )
    stats = swarm_statistics(
        core, peers, 1.0, downloaded_from={}, uploaded_to={}, complete=False,
        delivered_by=closed, web_sources=web,
    )  # fmt: skip
    return stats.sources


def test_a_peer_reached_over_two_connections_is_one_source() -> None:
    dialled = _peer(("10.0.0.2", 6881), b"S" * 20, dialled=True)
    incoming = _peer(("10.0.0.2", 50123), b"S" * 20, dialled=False)
    dialled.downloaded = incoming.downloaded = 16384
    assert dialled.label != incoming.label  # two addresses in downloaded_from
    assert _sources([dialled, incoming], frozenset()) == 1
    assert _sources([incoming], frozenset({dialled.source})) == 1  # one of them closed


def test_different_peers_peers_without_payload_and_web_seeds() -> None:
    first = _peer(("10.0.0.2", 6881), b"A" * 20, dialled=True)
    second = _peer(("10.0.0.3", 6881), b"B" * 20, dialled=True)
    idle = _peer(("10.0.0.4", 6881), b"C" * 20, dialled=True)
    first.downloaded = second.downloaded = 1
    assert _sources([first, second, idle], frozenset(), web=1) == 3
    before_handshake = _peer(("10.0.0.5", 6881), b"", dialled=True)
    before_handshake.downloaded = 1
    assert before_handshake.source == "10.0.0.5:6881"
    assert _sources([before_handshake], frozenset()) == 1
