"""Hostile input to ``servent/network/1`` from real nodes on loopback: malformed and
oversized frames, forged invitations, a revoked member coming back, a member posing
as an admin.  Every one is refused; the node keeps serving members."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from network_nodes import address, running_nodes
from servent.errors import NetworkError
from servent.node.network_wire import ask
from servent.node.node import Node
from servent.proto.channel import CloseCode
from servent.proto.network import (
    PROTOCOL,
    BroadcastFrame,
    Join,
    KeyAsk,
    Query,
    Refusal,
    Results,
    parse_invitation,
)

pytestmark = pytest.mark.e2e


async def raw_request(node: Node, target: Node, data: bytes) -> tuple[bytes | None, object]:
    channel = await node.channels.connect(target.identity.public_key, [address(target)])
    stream = channel.open_stream(PROTOCOL)
    stream.send(data)
    stream.close()
    return await stream.receive(), stream.reset_by_peer


async def test_malformed_frames_reset_the_stream_and_members_are_still_served(
    tmp_path: Path,
) -> None:
    async with running_nodes(tmp_path, "admin", "bob") as (admin, bob):
        admin.networks.create("club")
        await bob.networks.join(admin.networks.invite("club")["invite"])
        ident = admin.networks.by_name("club").network_id
        for garbage in (b"", b"not bencode", b"d1:y4:joine", b"d1:y5:hello1:i3:abce"):
            answer, reset = await raw_request(bob, admin, garbage)
            assert answer is None and reset == (CloseCode.PROTOCOL_ERROR, "malformed request")
        answer, reset = await raw_request(bob, admin, b"d1:y1:q1:q" + b"60000:" + b"a" * 60_000)
        assert answer is None and reset is not None
        assert await ask(bob.channels, admin.identity.public_key, Query(ident, "x", 5)) == Results(
            ()
        )


async def test_forged_invitations_and_a_revoked_member_coming_back_are_refused(
    tmp_path: Path,
) -> None:
    async with running_nodes(tmp_path, "admin", "bob", "eve") as (admin, bob, eve):
        admin.networks.create("club")
        token = admin.networks.invite("club", uses=5)["invite"]
        real = parse_invitation(token)
        # a guessed secret, an invented invite ID, another network's ID
        for forged in (
            dataclasses.replace(real, secret=os.urandom(16)),
            dataclasses.replace(real, invite_id=os.urandom(16)),
            dataclasses.replace(real, network_id=os.urandom(16)),
        ):
            with pytest.raises(NetworkError, match=r"invalid invitation|not allowed"):
                await eve.networks.join(forged.text())
        assert eve.networks.networks() == []
        # the invitation still has its five uses: nothing was counted for the forgeries
        record = admin.networks.by_name("club").invite(real.invite_id)
        assert record is not None and record.uses_left == 5

        await bob.networks.join(token)
        await admin.networks.revoke("club", bob.identity_info()["id"])
        another = admin.networks.invite("club")["invite"]
        with pytest.raises(NetworkError, match="not allowed"):
            await bob.networks.join(another)
        ident = real.network_id
        for frame in (
            Query(ident, "x", 5),
            KeyAsk(ident, 2),
            KeyAsk(ident, 1),
            BroadcastFrame(ident, os.urandom(16), 0, "still here?"),
        ):
            answer = await ask(bob.channels, admin.identity.public_key, frame)
            assert answer == Refusal("not allowed")


async def test_a_plain_member_cannot_admit_anyone(tmp_path: Path) -> None:
    async with running_nodes(tmp_path, "admin", "bob", "eve") as (admin, bob, eve):
        admin.networks.create("club")
        real = parse_invitation(admin.networks.invite("club")["invite"])
        await bob.networks.join(real.text())
        with pytest.raises(NetworkError, match="only an admin"):
            bob.networks.invite("club")
        # eve presents the (used) invitation to bob, a plain member
        answer = await ask(
            eve.channels, bob.identity.public_key,
            Join(real.network_id, real.invite_id, real.secret), addresses=[address(bob)],
        )  # fmt: skip
        assert answer == Refusal("not allowed")
        assert len(admin.networks.by_name("club").members) == 2


async def test_a_second_network_of_the_same_name_is_refused_before_a_use_is_counted(
    tmp_path: Path,
) -> None:
    async with running_nodes(tmp_path, "admin", "other", "bob") as (admin, other, bob):
        admin.networks.create("club")
        other.networks.create("club")
        await bob.networks.join(admin.networks.invite("club")["invite"])
        token = other.networks.invite("club")["invite"]
        with pytest.raises(NetworkError, match="another network named 'club'"):
            await bob.networks.join(token)
        record = other.networks.by_name("club").invite(parse_invitation(token).invite_id)
        assert record is not None and record.uses_left == 1
