"""LSD joins the address families the host has (real sockets, loopback only).

Multicast never leaves ``lo`` here: the IPv6 group is joined on ``lo``, and
the IPv4 join is made to fail with an address this host does not have.
"""

from __future__ import annotations

import logging

import pytest

from interop.reference_clients import LOOPBACK
from servent.net.engine import EngineConfig, SwarmEngine
from servent.net.lsd import LsdDriver

pytestmark = pytest.mark.e2e

IH = bytes(range(20))


async def test_driver_joins_the_ipv6_group_alone_when_asked() -> None:
    driver = LsdDriver("127.0.0.1", lambda h, a: None, port=0, ipv4=False, ipv6=True,
                       interface6="lo")  # fmt: skip
    await driver.start()
    try:
        assert driver.families == ("ipv6",) and driver.port != 0
        assert driver.announce(IH, 6881, 0.0) and not driver.announce(IH, 6881, 1.0)
    finally:
        driver.close()
    assert driver.families == () and not driver.announce(b"y" * 20, 6881, 1000.0)


async def test_driver_keeps_the_family_that_works_and_fails_when_none_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 192.0.2.1 (TEST-NET-1) is no address of this host: the IPv4 join fails.
    driver = LsdDriver("192.0.2.1", lambda h, a: None, port=0, ipv6=True, interface6="lo")
    with caplog.at_level(logging.INFO, logger="servent.net.lsd"):
        await driver.start()
    try:
        assert driver.families == ("ipv6",)
        assert "LSD without IPv4 group 239.192.152.143 on 192.0.2.1" in caplog.text
    finally:
        driver.close()
    alone = LsdDriver("192.0.2.1", lambda h, a: None, port=0)
    with pytest.raises(OSError, match="LSD joined no multicast group"):
        await alone.start()
    assert alone.families == ()


async def test_engine_without_any_multicast_route_runs_without_lsd(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = EngineConfig(
        listen_host=LOOPBACK, trackers=False, lsd=True, lsd_interface="192.0.2.1",
        lsd_ipv6=False, lsd_port=0,
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="servent.net.engine"):
        async with SwarmEngine(config) as engine:
            assert engine.lsd is None and engine.port
    assert "local service discovery is off: LSD joined no multicast group" in caplog.text
