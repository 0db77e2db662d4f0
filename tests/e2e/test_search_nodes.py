"""Search between in-process nodes on loopback: trust, privacy and hostile input.

Real nodes (swarm engine, node channels on 127.0.0.1, DHT and LSD off) talk
``servent/search/1``; a hand-written peer sends what a hostile node would.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from network_nodes import loopback_node
from polling import wait_for
from servent.codec.compact import encode_peer
from servent.net.node_channel import NodeStream
from servent.net.search_driver import PROTOCOL
from servent.node.node import Node
from servent.node.search_service import SearchService
from servent.proto.channel import CloseCode
from servent.proto.search import (
    FILE,
    Query,
    ResultBatch,
    SearchEntry,
    Store,
    StoreAnswer,
    decode_message,
    encode_message,
)
from servent.proto.search.limits import RequestLimiter

pytestmark = pytest.mark.e2e

DEADLINE = 30.0


def running_node(root: Path, name: str, **values: object) -> Node:
    return loopback_node(root / name, **values)


def service(node: Node) -> SearchService:
    assert node.search.running
    return node.search


def bootstrap(node: Node) -> str:
    address = node.peer_address()
    assert address is not None
    return f"{address[0]}:{address[1]}"


async def request(node: Node, target: Node, message: bytes) -> tuple[list[bytes], NodeStream]:
    """Open a search stream from ``node`` to ``target``, send raw bytes, read to the end."""
    address = target.peer_address()
    assert address is not None
    channel = await node.channels.dial(*address, expected=target.identity.public_key)
    stream = channel.open_stream(PROTOCOL)
    stream.send(message)
    stream.close()
    answers: list[bytes] = []
    async with asyncio.timeout(DEADLINE):
        while (data := await stream.receive()) is not None:
            answers.append(data)
    return answers, stream


def shared_folder(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / f"{name}.flac").write_bytes(os.urandom(40_000))
    return folder


async def names_found(node: Node, text: str, people: bool = False) -> set[str]:
    return {r.entry.name async for r in service(node).search(text, within=2.0, people=people)}


async def test_hostile_requests_reset_the_stream_and_count_against_the_sender(
    tmp_path: Path,
) -> None:
    async with (
        running_node(tmp_path, "s", supernode="on") as supernode,
        running_node(tmp_path, "h", supernode="off") as hostile,
    ):
        for garbage in (b"", b"not bencode", encode_message(StoreAnswer(1, 0)), b"d1:y1:qe"):
            answers, stream = await request(hostile, supernode, garbage)
            assert answers == []
            assert stream.reset_by_peer is not None
            assert stream.reset_by_peer[0] == CloseCode.PROTOCOL_ERROR
        assert service(supernode).scores.score(hostile.identity.public_key) <= -4
        # The node still answers well-formed requests from others afterwards.
        async with running_node(tmp_path, "o", supernode="off") as other:
            query = Query(b"12345678", "anything", scope=1)
            answers, _ = await request(other, supernode, encode_message(query))
            assert decode_message(answers[-1]) == ResultBatch(b"12345678", (), last=True)


async def test_forged_entries_are_refused_and_leaves_store_nothing(tmp_path: Path) -> None:
    async with (
        running_node(tmp_path, "s", supernode="on") as supernode,
        running_node(tmp_path, "l", supernode="off") as leaf,
        running_node(tmp_path, "p", supernode="off") as publisher,
    ):
        address = publisher.peer_address()
        assert address is not None
        honest = SearchEntry(
            FILE, "Blue Danube", publisher.identity.public_key, encode_peer(address),
            int(time.time()) + 600, info_hash=os.urandom(20), size=10, files=1,
        ).signed(publisher.identity.sign)  # fmt: skip
        forged = SearchEntry(
            FILE,
            "Blue Danube forged",
            supernode.identity.public_key,
            encode_peer(address),
            int(time.time()) + 600,
            info_hash=os.urandom(20),
            size=10,
            files=1,
        ).signed(publisher.identity.sign)  # signed by another key than it names
        answers, _ = await request(publisher, supernode, encode_message(Store((honest, forged))))
        assert decode_message(answers[0]) == StoreAnswer(1, 1)
        assert [e.name for e in service(supernode).store.lookup("danube", time.time())] == [
            "Blue Danube"
        ]
        answers, _ = await request(publisher, leaf, encode_message(Store((honest,))))
        assert decode_message(answers[0]) == StoreAnswer(0, 1)
        assert len(service(leaf).store) == 0


async def test_searchable_false_keeps_shares_out_of_answers(tmp_path: Path) -> None:
    async with running_node(tmp_path, "s", supernode="on") as supernode:
        boot = bootstrap(supernode)
        async with (
            running_node(tmp_path, "p", supernode="off", searchable=False,
                         search_bootstrap=[boot]) as private,
            running_node(tmp_path, "q", supernode="off", search_bootstrap=[boot]) as searcher,
        ):  # fmt: skip
            await private.share(shared_folder(tmp_path, "secret_waltz"))
            await searcher.share(shared_folder(tmp_path, "public_waltz"))
            await wait_for(lambda: service(supernode).store.lookup("waltz", time.time()),
                           "the public share reaches the supernode")  # fmt: skip
            assert await names_found(searcher, "secret waltz") == set()
            assert await names_found(private, "public waltz") == {"public_waltz"}
            assert await names_found(private, "secret waltz") == set()  # not even to itself
            stored = {e.name for e in service(supernode).store.entries()}
            assert stored == {"public_waltz"}


async def test_a_spamming_neighbour_is_scored_down_and_no_longer_asked(tmp_path: Path) -> None:
    async with (
        running_node(tmp_path, "q", supernode="off") as searcher,
        running_node(tmp_path, "x", supernode="off") as spammer,
    ):
        address = spammer.peer_address()
        assert address is not None
        asked: list[str] = []

        async def spam(stream: NodeStream) -> None:
            message = await stream.receive()
            assert message is not None
            query = decode_message(message)
            assert isinstance(query, Query)
            asked.append(query.text)
            junk = tuple(
                SearchEntry(
                    FILE, f"cheap pills {i}", spammer.identity.public_key, encode_peer(address),
                    int(time.time()) + 600, info_hash=os.urandom(20),
                ).signed(spammer.identity.sign)
                for i in range(6)
            )  # fmt: skip
            stream.send(encode_message(ResultBatch(query.id, junk, last=True)))

        spammer.channels.protocols._handlers[PROTOCOL] = spam  # the hostile node's own code
        await searcher.channels.dial(*address, expected=spammer.identity.public_key)
        assert await names_found(searcher, "danube") == set()
        assert service(searcher).scores.blocked(spammer.identity.public_key, time.time())
        assert await names_found(searcher, "danube") == set()
        assert asked == ["danube"]  # the second search did not ask it again


async def test_the_local_index_follows_shares_and_removals(tmp_path: Path) -> None:
    async with running_node(tmp_path, "a", supernode="off") as node:
        shared = await node.share(shared_folder(tmp_path, "Blue_Danube-Waltz"))
        await wait_for(
            lambda: service(node).index.search("danube waltz", answerable_only=True),
            "the share is indexed as complete",
        )
        assert await names_found(node, "danu walt") == {"Blue_Danube-Waltz"}
        await node.remove(shared.id)
        await wait_for(lambda: not service(node).index.search("danube"), "the index forgets it")
        assert await names_found(node, "danube waltz") == set()


async def test_a_node_flooding_requests_is_held_to_its_rate(tmp_path: Path) -> None:
    async with (
        running_node(tmp_path, "s", supernode="on") as supernode,
        running_node(tmp_path, "f", supernode="off") as flooder,
    ):
        await supernode.share(shared_folder(tmp_path, "tango"))
        await wait_for(lambda: service(supernode).index.search("tango", answerable_only=True),
                       "the share is indexed")  # fmt: skip
        service(supernode).limiter = RequestLimiter(rate=0.2, burst=20)
        started = time.monotonic()
        answered = 0
        for number in range(40):
            query = Query(number.to_bytes(8, "big"), "tango", scope=0)
            answers, _ = await request(flooder, supernode, encode_message(query))
            batches = [decode_message(a) for a in answers]
            if any(isinstance(b, ResultBatch) and b.entries for b in batches):
                answered += 1
        refilled = (time.monotonic() - started) * 0.2
        assert 20 <= answered <= 20 + refilled + 1  # the burst, and what the rate refilled
        assert service(supernode).limiter.refused > 0


async def test_a_silent_neighbour_does_not_hold_a_search_past_its_timeout(
    tmp_path: Path,
) -> None:
    async with (
        running_node(tmp_path, "q", supernode="off") as searcher,
        running_node(tmp_path, "z", supernode="off") as silent,
    ):
        address = silent.peer_address()
        assert address is not None
        release = asyncio.Event()

        async def never_answer(stream: NodeStream) -> None:
            await release.wait()  # reads nothing, answers nothing

        silent.channels.protocols._handlers[PROTOCOL] = never_answer  # the silent node's code
        await searcher.channels.dial(*address, expected=silent.identity.public_key)
        await searcher.share(shared_folder(tmp_path, "bolero"))
        await wait_for(lambda: service(searcher).index.search("bolero", answerable_only=True),
                       "the share is indexed")  # fmt: skip
        started = time.monotonic()
        found = await names_found(searcher, "bolero")
        assert time.monotonic() - started < 4.0  # the 2 s limit, with room for a loaded machine
        assert found == {"bolero"}  # its own share still comes back at once
        release.set()


async def test_a_new_supernode_gets_its_entries_handed_over(tmp_path: Path) -> None:
    async with (
        running_node(tmp_path, "s1", supernode="on") as first,
        running_node(tmp_path, "p", supernode="off") as publisher,
    ):
        address = publisher.peer_address()
        assert address is not None
        entry = SearchEntry(
            FILE, "Bolero Live", publisher.identity.public_key, encode_peer(address),
            int(time.time()) + 600, info_hash=os.urandom(20), size=10, files=1,
        ).signed(publisher.identity.sign)  # fmt: skip
        answers, _ = await request(publisher, first, encode_message(Store((entry,))))
        assert decode_message(answers[0]) == StoreAnswer(1, 0)
        async with running_node(
            tmp_path, "s2", supernode="on", search_bootstrap=[bootstrap(first)]
        ) as second:
            # Nobody publishes again: the entry reaches the newcomer by handoff only (with
            # two supernodes both are among the R = 4 responsible for every key).
            await wait_for(lambda: service(second).store.lookup("bolero", time.time()),
                           "the entry was handed over to the newcomer")  # fmt: skip
            assert list(service(second).store.lookup("live bolero", time.time())) == [entry]


async def test_an_auto_node_learns_it_is_reachable_by_a_connect_back(tmp_path: Path) -> None:
    """The node's own connect-back check (servent/reach/1) to a known supernode."""
    async with (
        running_node(tmp_path, "s", supernode="on") as supernode,
        running_node(
            tmp_path, "a", supernode="auto", search_bootstrap=[bootstrap(supernode)]
        ) as auto,
    ):
        await wait_for(lambda: len(service(auto).view) >= 1, "the supernode is known")
        assert not service(auto).reachable
        assert await service(auto).check_reachable()
        assert auto.reachability().reachable is True
        assert service(auto).role == "leaf"  # reachable, not yet up for 30 minutes
