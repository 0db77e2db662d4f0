"""The node a one-shot command runs (``servent get``, ``seed``, ``dht ...``): only torrents,
its state gone with it, and the DHT the command gave used but left to the command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from servent.errors import NodeError, ServentError
from servent.net.dht_driver import DhtDriver
from servent.node.one_shot import one_shot_node
from servent.node.torrent_spec import SessionOptions
from servent.proto.dht import DhtConfig
from servent.storage.torrent_creator import create_torrent

LOOPBACK = "127.0.0.1"
RELAXED = DhtConfig(restrict_ips=False, rate_limit_per_ip=0.0)


async def test_state_goes_with_the_node_and_the_given_dht_stays_open() -> None:
    async with (
        DhtDriver(host=LOOPBACK, config=RELAXED) as given,
        DhtDriver(host=LOOPBACK, config=RELAXED) as other,
    ):
        async with one_shot_node({"listen_host": LOOPBACK}, client_version="", dht=given) as node:
            state = node.config.data_dir
            assert (state / "state.sqlite3").exists()
            assert node.dht is given
            assert node.listen_addresses()  # the swarm listens (on the DHT's port number)
            with pytest.raises(NodeError):
                node.identity  # noqa: B018 (no identity, channels or messaging: torrents only)
        assert not state.exists()
        answer = await given.ping(other.address)  # the command's DHT, still open
        assert answer.node_id == other.node_id


async def test_dht_command_node_runs_the_dht_without_a_peer_listener() -> None:
    settings = {"listen_host": LOOPBACK, "dht_enabled": True, "dht_restrict_ips": False}
    async with one_shot_node(settings, client_version="", swarm={"listen": False}) as node:
        assert node.dht is not None and node.dht.address[0] == LOOPBACK
        assert node.listen_addresses() == []


async def test_a_start_failure_is_raised_and_the_torrent_not_kept(tmp_path: Path) -> None:
    """``servent get -o FILE/sub``: one error, and the node lists no torrent that does not run."""
    (tmp_path / "payload.bin").write_bytes(os.urandom(100_000))
    metainfo = create_torrent(tmp_path / "payload.bin")
    (tmp_path / "file").write_bytes(b"a file, not a folder")
    options = SessionOptions(raise_start_errors=True)
    async with one_shot_node({"listen_host": LOOPBACK}, client_version="") as node:
        with pytest.raises((ServentError, OSError)):
            await node.add_torrent(metainfo, tmp_path / "file" / "sub", options=options)
        assert node.torrents() == []
    assert (tmp_path / "file").read_bytes() == b"a file, not a folder"


async def test_a_dht_port_in_use_is_one_clear_error() -> None:
    """``servent dht ... --local-port N`` with N taken: the command's error, not a log line
    and a node running on without the DHT it was started for."""
    async with DhtDriver(host=LOOPBACK, config=RELAXED) as taken:
        port = taken.address[1]
        settings = {"listen_host": LOOPBACK, "listen_port": port, "dht_enabled": True}
        with pytest.raises(ServentError, match=f"cannot open the DHT's UDP port {port}"):
            async with one_shot_node(settings, client_version="", swarm={"listen": False}):
                pass
