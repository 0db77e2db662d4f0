"""A direct dial to a peer PEX did not flag reachable goes over TCP only (issue 18).

Its uTP SYNs would reach the peer's router and leave an unanswered UDP entry
there (a Linux NAT keeps it 30 s) that gives the BEP 55 uTP punch to come a
random port; the punch dials uTP itself.
"""

from __future__ import annotations

from servent.net.known_peers import KnownPeer
from servent.net.peer_dialer import PeerDialer

ADDRESS = ("11.78.0.1", 6881)


def test_only_a_pex_peer_without_the_reachable_flag_counts_as_behind_a_nat() -> None:
    assert KnownPeer(ADDRESS, source="pex").behind_nat
    assert not KnownPeer(ADDRESS, source="pex", reachable=True).behind_nat
    assert not KnownPeer(ADDRESS, source="tracker").behind_nat
    assert not KnownPeer(ADDRESS, source="holepunch").behind_nat


def test_the_default_preference_dials_it_over_tcp_only() -> None:
    dialer = PeerDialer(preference="prefer-tcp")
    direct = dialer.behind_nat(ADDRESS)
    assert direct.preference == "tcp-only"
    assert dialer.preference == "prefer-tcp"  # the torrent's dialer is unchanged
    assert direct.outcomes is dialer.outcomes and direct.utp_first is dialer.utp_first


def test_a_peer_known_to_want_utp_and_a_user_who_prefers_utp_keep_utp() -> None:
    dialer = PeerDialer(preference="prefer-tcp")
    dialer.tcp_closed_early(*ADDRESS)
    assert dialer.behind_nat(ADDRESS) is dialer
    for preference in ("prefer-utp", "tcp-only"):
        other = PeerDialer(preference=preference)
        assert other.behind_nat(ADDRESS) is other
