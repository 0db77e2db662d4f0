"""Invite-only networks between in-process nodes on loopback (``docs/networks.md``).

Real nodes (swarm engine, node channels on 127.0.0.1, DHT and LSD off): joining by
invitation, invitation accounting, private shares found and fetched by members
only, outsiders refused at the peer wire and at ``servent/network/1``, revocation
with key rotation, and forged rosters and proofs from a member.
"""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from network_nodes import (
    address,
    fetch,
    folder,
    has_epoch,
    not_allowed,
    running_node,
    running_nodes,
    wait_for,
)
from servent.errors import NetworkError
from servent.node.network_wire import ask
from servent.proto.network import (
    Hello,
    KeyAsk,
    Query,
    Refusal,
    Results,
    Roster,
    membership_proof,
)

pytestmark = pytest.mark.e2e


async def test_members_share_search_fetch_outsiders_and_the_revoked_get_nothing(
    tmp_path: Path,
) -> None:
    names = ("admin", "bob", "carol", "dave")
    async with running_nodes(tmp_path, *names) as (admin, bob, carol, dave):
        created = admin.networks.create("friends")
        assert created["admin"] and created["epoch"] == 1
        for member in (bob, carol):
            invite = admin.networks.invite("friends")["invite"]
            joined = await member.networks.join(invite)
            assert joined["name"] == "friends" and not joined["admin"]
            with pytest.raises(NetworkError, match="used up"):
                await dave.networks.join(invite)
        expiring = admin.networks.invite("friends", expires_in=1)["invite"]
        await wait_for(lambda: _past(expiring), "the invitation expires")
        with pytest.raises(NetworkError, match="expired"):
            await dave.networks.join(expiring)
        await wait_for(lambda: len(bob.networks.by_name("friends").members) == 3, "bob sees carol")

        shared = folder(tmp_path, "holiday", 300_000)
        share = await admin.networks.share("friends", str(shared))
        found = await bob.networks.search("friends", "holiday")
        assert [r["name"] for r in found] == ["holiday"]
        got = await fetch(bob, found[0]["magnet"], [address(admin)])
        await wait_for(lambda: bob.torrent(got).progress >= 1.0, "bob fetches the share")
        received = Path(bob.config.effective_download_dir) / "holiday" / "holiday.bin"
        assert received.read_bytes() == (shared / "holiday.bin").read_bytes()

        # an outsider with the magnet and the address: refused at the peer wire
        refused_before = not_allowed(admin)
        outsider = await fetch(dave, share["magnet"], [address(admin), address(bob)])
        await wait_for(lambda: not_allowed(admin) > refused_before, "the outsider is refused")
        assert dave.torrent(outsider).downloaded == 0
        # ... and at servent/network/1: nothing but "not allowed"
        ident = admin.networks.by_name("friends").network_id
        answer = await ask(dave.channels, admin.identity.public_key, Query(ident, "holiday", 10),
                           addresses=[address(admin)])  # fmt: skip
        assert answer == Refusal("not allowed")
        answer = await ask(dave.channels, admin.identity.public_key, KeyAsk(ident, 1),
                           addresses=[address(admin)])  # fmt: skip
        assert answer == Refusal("not allowed")
        # the public search (dave now has a channel to admin, a neighbour) finds nothing
        public = [r async for r in dave.search.search("holiday", within=2.0)]
        assert public == []
        assert [r async for r in admin.search.search("holiday", within=0.5)] == []

        # revoke carol: new epoch, bob gets it, carol gets nothing shared afterwards
        revoked = await admin.networks.revoke("friends", carol.identity_info()["id"])
        assert revoked["epoch"] == 2
        await wait_for(lambda: has_epoch(bob, "friends", 2), "bob has the key of epoch 2")
        later = folder(tmp_path, "after", 200_000)
        second = await admin.networks.share("friends", str(later))
        found = await bob.networks.search("friends", "after")
        assert [r["name"] for r in found] == ["after"]
        assert await carol.networks.search("friends", "after") == []
        assert await carol.networks.search("friends", "holiday") == []
        refused_before = not_allowed(admin)
        carols = await fetch(carol, second["magnet"], [address(admin), address(bob)])
        bobs = await fetch(bob, found[0]["magnet"], [address(admin)])
        await wait_for(lambda: bob.torrent(bobs).progress >= 1.0, "bob fetches after revoking")
        await wait_for(lambda: not_allowed(admin) > refused_before, "carol is refused")
        assert carol.torrent(carols).downloaded == 0


def _past(token: str) -> bool:
    from servent.proto.network import parse_invitation

    return time.time() >= parse_invitation(token).expires


async def test_forged_rosters_and_proofs_from_a_member_change_nothing(tmp_path: Path) -> None:
    async with running_nodes(tmp_path, "admin", "bob") as (admin, bob):
        admin.networks.create("club")
        await bob.networks.join(admin.networks.invite("club")["invite"])
        held = admin.networks.by_name("club")
        ident = held.network_id
        # bob, a plain member, signs a roster that makes him admin and drops nobody
        forged = Roster(
            ident, held.creator, held.nonce, held.name, held.sequence + 5, held.epoch,
            tuple(m if m.key != bob.identity.public_key else type(m)(m.key, True, m.name)
                  for m in held.members),
        ).signed(bob.identity.public_key, bob.identity.sign)  # fmt: skip
        key = bob.networks.current_key(ident)
        assert key is not None
        proof = membership_proof(key, ident, held.epoch, bob.identity.public_key,
                                 admin.identity.public_key)  # fmt: skip
        answer = await ask(bob.channels, admin.identity.public_key,
                           Hello(ident, forged.encode(), held.epoch, proof))  # fmt: skip
        assert isinstance(answer, Hello)
        assert admin.networks.by_name("club").sequence == held.sequence
        assert not admin.networks.by_name("club").is_admin(bob.identity.public_key)
        # a wrong membership proof is refused
        answer = await ask(bob.channels, admin.identity.public_key,
                           Hello(ident, held.encode(), held.epoch, bytes(32)))  # fmt: skip
        assert answer == Refusal("not allowed")
        # a member's query for a network it is not in, or with garbage, gets nothing
        answer = await ask(bob.channels, admin.identity.public_key, Query(b"x" * 16, "a", 5))
        assert answer == Refusal("not allowed")
        answer = await ask(bob.channels, admin.identity.public_key, Query(ident, "nothing", 5))
        assert answer == Results(())


async def test_a_revoked_members_running_download_stops_and_a_restart_keeps_it_closed(
    tmp_path: Path,
) -> None:
    """The epoch change drops the network's peer connections; members dial again with the
    new key, the revoked one is refused.  After a restart the torrent is still closed."""
    async with AsyncExitStack() as stack:
        admin = await stack.enter_async_context(running_node(tmp_path, "admin"))
        carol = await stack.enter_async_context(
            running_node(tmp_path, "carol", download_rate_limit=64_000)
        )
        admin.networks.create("club")
        await carol.networks.join(admin.networks.invite("club")["invite"])
        shared = folder(tmp_path, "film", 4_000_000)
        share = await admin.networks.share("club", str(shared))
        found = await carol.networks.search("club", "film")
        got = await fetch(carol, found[0]["magnet"], [address(admin)])
        await wait_for(lambda: carol.torrent(got).downloaded > 100_000, "carol is downloading")
        refused_before = not_allowed(admin)
        await admin.networks.revoke("club", carol.identity_info()["id"])
        await wait_for(lambda: not_allowed(admin) > refused_before, "carol's new dial refused")
        stopped_at = carol.torrent(got).downloaded
        await wait_for(lambda: not_allowed(admin) > refused_before + 1, "refused again")
        assert carol.torrent(got).downloaded == stopped_at
        assert carol.torrent(got).progress < 1.0

    async with AsyncExitStack() as stack:  # the admin restarts: still closed to outsiders
        admin = await stack.enter_async_context(running_node(tmp_path, "admin"))
        dave = await stack.enter_async_context(running_node(tmp_path, "dave"))
        assert admin.networks.is_network_torrent(bytes.fromhex(share["id"]))
        refused_before = not_allowed(admin)
        stolen = await fetch(dave, share["magnet"], [address(admin)])
        await wait_for(lambda: not_allowed(admin) > refused_before, "dave is refused")
        assert dave.torrent(stolen).downloaded == 0
        # leaving the network keeps its torrent closed, it never turns public
        await admin.networks.leave("club")
        assert admin.networks.swarm_key(bytes.fromhex(share["id"])) is not None
        await dave.remove(stolen)
        refused_before = not_allowed(admin)
        stolen = await fetch(dave, share["magnet"], [address(admin)])
        await wait_for(lambda: not_allowed(admin) > refused_before, "dave is refused again")
        assert dave.torrent(stolen).downloaded == 0


async def test_members_meet_again_at_the_dht_rendezvous(tmp_path: Path) -> None:
    """A member that lost another's address finds it at the network's rendezvous in a
    private loopback DHT (an info-hash only key holders can compute)."""
    dht = {"dht_enabled": True, "dht_restrict_ips": False}
    async with AsyncExitStack() as stack:
        entry = await stack.enter_async_context(
            running_node(tmp_path, "entry", **dht, dht_bootstrap=["127.0.0.1:9"])
        )
        assert entry._dht is not None
        boot = [f"127.0.0.1:{entry._dht.address[1]}"]
        admin, bob, carol = [
            await stack.enter_async_context(running_node(tmp_path, n, **dht, dht_bootstrap=boot))
            for n in ("admin", "bob", "carol")
        ]
        for node in (admin, bob, carol):
            await wait_for(lambda n=node: n._dht and len(n._dht.node.routing_table), "DHT up")
        admin.networks.create("hikers")
        for member in (bob, carol):
            await member.networks.join(admin.networks.invite("hikers")["invite"])
        carol_key = carol.identity.public_key
        await wait_for(lambda: carol_key in bob.networks.addresses, "bob knows carol")
        bob.networks.addresses.clear()  # bob forgot where everyone is
        channel = bob.channels.channel_to(carol_key)
        if channel is not None:
            channel.close()
            await channel.wait_closed()
        await carol.networks.meet()  # carol announces herself there (and may greet bob)
        bob.networks.addresses.clear()
        greeted = await bob.networks.meet()
        assert greeted >= 1 and carol_key in bob.networks.addresses
        assert bob.networks.addresses[carol_key] == [address(carol)]
