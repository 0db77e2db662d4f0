"""A node's advert changing after its torrent connected reaches its peers on the open
connection (a repeated BEP 10 handshake, ``docs/relay.md``), and a common peer passes it on."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from test_relay_loopback import DEADLINE, address, loopback_node
from test_torrent_over_channel import (
    WAIT,
    connected_to,
    payload_file,
    running,
    session_of,
    sv_nodes_link,
)

from polling import wait_for
from servent.codec.node_record import RelayRef
from servent.net.swarm_peer import SwarmPeer
from servent.proto.node_routes import (
    INFLOW_BURST,
    INFLOW_MAX_DEBT,
    NodeAdvert,
    encode_nodes,
)

pytestmark = pytest.mark.e2e


async def test_a_relay_reserved_after_connecting_reaches_the_peer_without_reconnecting(
    tmp_path: Path,
) -> None:
    _payload, _data, torrent = payload_file(tmp_path, 64 * 1024 + 3)
    async with AsyncExitStack() as stack, asyncio.timeout(DEADLINE + 3 * WAIT):
        relay = await stack.enter_async_context(loopback_node(tmp_path / "r", relay_enabled=True))
        hub = await stack.enter_async_context(loopback_node(tmp_path / "h"))
        late = await stack.enter_async_context(loopback_node(tmp_path / "l"))
        third = await stack.enter_async_context(loopback_node(tmp_path / "t"))
        at_hub = await hub.add(torrent, tmp_path / "hub")  # leechers of nothing: they stay
        await running(hub, at_hub)
        at_late = await late.add(torrent, tmp_path / "late")
        await stack.enter_async_context(connected_to(late, at_late, address(hub)))
        at_third = await third.add(torrent, tmp_path / "third")
        await stack.enter_async_context(connected_to(third, at_third, address(hub)))
        hub_nodes = session_of(hub, at_hub).extensions.node_peers
        third_nodes = session_of(third, at_third).extensions.node_peers
        late_nodes = session_of(late, at_late).extensions.node_peers
        assert hub_nodes is not None and third_nodes is not None and late_nodes is not None
        bare = NodeAdvert(late.identity.public_key)

        def hub_link() -> SwarmPeer | None:
            return next((p for p, a in hub_nodes._adverts.items() if a.key == bare.key), None)

        await wait_for(hub_link, "the hub seeing the late node's advert", WAIT)
        peer = hub_link()
        assert peer is not None
        assert hub_nodes._adverts[peer] == bare  # no relay yet: the reservation comes later

        def heard() -> NodeAdvert | None:
            return third_nodes.heard.get(address(late))

        await wait_for(heard, "the hub telling the third node of the late one", WAIT)
        assert heard() == bare

        to_relay = await late.channels.dial(*address(relay))
        assert await late.relaying.relay.reserve(to_relay)
        keeper = asyncio.get_running_loop().create_task(late.relaying.relay.keep_reservation())
        ref = RelayRef(relay.identity.public_key, address(relay))
        relayed = NodeAdvert(late.identity.public_key, (ref,))
        on_link = lambda: hub_nodes._adverts.get(peer) == relayed  # noqa: E731
        await wait_for(on_link, "the hub seeing the relay on the same connection", WAIT)
        assert peer in session_of(hub, at_hub).open_peers  # never reconnected
        assert late_nodes.updates_sent >= 1
        await wait_for(lambda: heard() == relayed, "the hub passing the new advert on", WAIT)
        late.relaying.relay.release()
        await keeper


async def test_a_flood_of_well_formed_sv_nodes_costs_the_connection(tmp_path: Path) -> None:
    async with asyncio.timeout(DEADLINE + 2 * WAIT), sv_nodes_link(tmp_path) as (peer, _first):
        flood = int(INFLOW_BURST + INFLOW_MAX_DEBT) + 1
        for _ in range(flood):  # each one valid: only the rate is wrong
            peer.session.conn.send_extension("sv_nodes", encode_nodes([]))
        peer.session.schedule_flush()
        await wait_for(lambda: peer.session.is_closed, "one dropping the flooding peer", WAIT)


async def test_a_node_known_to_be_reachable_keeps_its_id_out_of_the_swarm(tmp_path: Path) -> None:
    _payload, _data, torrent = payload_file(tmp_path, 64 * 1024 + 5)
    async with AsyncExitStack() as stack, asyncio.timeout(DEADLINE + 2 * WAIT):
        hub = await stack.enter_async_context(loopback_node(tmp_path / "h"))
        reached = await stack.enter_async_context(loopback_node(tmp_path / "r"))
        unknown = await stack.enter_async_context(loopback_node(tmp_path / "u"))
        channel = await reached.channels.connect(hub.identity.public_key, [address(hub)])
        verdict = await reached.check_reachable(channel)  # the hub dials it back: it can
        assert verdict.reachable is True
        at_hub = await hub.add(torrent, tmp_path / "hub")  # leechers of nothing: they stay
        await running(hub, at_hub)
        at_reached = await reached.add(torrent, tmp_path / "reached")
        await stack.enter_async_context(connected_to(reached, at_reached, address(hub)))
        at_unknown = await unknown.add(torrent, tmp_path / "unknown")
        await stack.enter_async_context(connected_to(unknown, at_unknown, address(hub)))
        hub_nodes = session_of(hub, at_hub).extensions.node_peers
        assert hub_nodes is not None
        keys = lambda: {a.key for a in hub_nodes._adverts.values()}  # noqa: E731
        # The node not known to be reachable names itself (peers may need to relay to it) ...
        await wait_for(lambda: unknown.identity.public_key in keys(), "the unknown's advert", WAIT)
        # ... the reachable one speaks the extension but sends no advert: no ID in the swarm.
        await wait_for(lambda: len(hub_nodes._servent) == 2, "both speaking sv_nodes", WAIT)
        assert reached.identity.public_key not in keys()
