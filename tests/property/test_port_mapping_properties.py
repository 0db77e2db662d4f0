"""Hostile router answers: any bytes raise PortMappingError or parse into a bounded mapping."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.proto.port_mapping import (
    PortMappingError,
    parse_natpmp_address,
    parse_natpmp_map,
    parse_pcp_map,
    pcp_map_request,
)

NONCE = b"\x01" * 12


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=1200), st.sampled_from(["tcp", "udp"]), st.integers(0, 65535))
def test_garbage_answers_raise_only_port_mapping_error(data: bytes, proto: str, port: int) -> None:
    with contextlib.suppress(PortMappingError):
        mapping = parse_natpmp_map(data, proto, port)
        assert mapping.internal_port == port and 0 <= mapping.external_port <= 65535
    with contextlib.suppress(PortMappingError):
        mapping = parse_pcp_map(data, proto, port, NONCE)
        assert mapping.internal_port == port and mapping.protocol == proto
    with contextlib.suppress(PortMappingError):
        assert parse_natpmp_address(data).count(".") == 3


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["tcp", "udp"]),
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.integers(0, 2**32 - 1),
    st.binary(min_size=12, max_size=12),
)
def test_a_pcp_answer_echoing_the_request_parses_back(
    proto: str, internal: int, external: int, lifetime: int, nonce: bytes
) -> None:
    request = pcp_map_request(
        proto, internal, external, lifetime, client_ip="10.1.2.3", nonce=nonce
    )
    answer = bytearray(request)
    answer[1] = 0x81  # R bit: a response
    answer[3] = 0  # result SUCCESS
    answer[8:24] = bytes(16)  # epoch and reserved in a response
    mapping = parse_pcp_map(bytes(answer), proto, internal, nonce)
    assert (mapping.external_port, mapping.lifetime, mapping.external_ip) == (
        external,
        lifetime,
        None,
    )
