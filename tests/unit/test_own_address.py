"""The address a node puts in its magnets (``share --with-peer``): never a wildcard."""

from __future__ import annotations

import ipaddress
import socket

from servent.node.own_address import advertised_address, route_source


def test_a_concrete_listening_address_is_kept() -> None:
    assert advertised_address(("127.0.0.1", 6881)) == ("127.0.0.1", 6881)
    assert advertised_address(("::1", 7000)) == ("::1", 7000)
    assert advertised_address(("node.example", 7000)) == ("node.example", 7000)


def test_a_wildcard_becomes_an_address_of_this_host() -> None:
    for wildcard, version in (("0.0.0.0", 4), ("::", 6)):
        host, port = advertised_address((wildcard, 6881))
        parsed = ipaddress.ip_address(host.split("%")[0])
        assert port == 6881
        assert parsed.version == version and not parsed.is_unspecified
        family = socket.AF_INET6 if version == 6 else socket.AF_INET
        # Either the routing table's choice, or loopback on a host without a route.
        assert host in {route_source(family), "127.0.0.1", "::1"}
        if not parsed.is_loopback:  # an address of this host: something can listen on it
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.bind((host, 0))
