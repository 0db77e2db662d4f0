"""``servent dht ...`` as separate processes against a few local DHT nodes on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from servent.net.dht_driver import DhtDriver
from servent.proto.dht import DhtConfig

LOOPBACK = DhtConfig(restrict_ips=False, rate_limit_per_ip=0.0, query_timeout=1.0)
CLI = [sys.executable, "-m", "servent", "dht"]
LOCAL = ["--host", "127.0.0.1", "--no-ip-restrictions", "--timeout", "20"]


async def run_cli(*args: str, limit: float = 30.0) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *CLI, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(limit):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def dht_nodes() -> AsyncIterator[list[DhtDriver]]:
    drivers = [
        DhtDriver(host="127.0.0.1", config=LOOPBACK, rng=random.Random(900 + i)) for i in range(5)
    ]
    try:
        for driver in drivers:
            await driver.start()
        async with asyncio.timeout(20):
            for driver in drivers[1:]:
                await driver.bootstrap([drivers[0].address])
        yield drivers
    finally:
        for driver in drivers:
            await driver.close()


def _addr(driver: DhtDriver) -> str:
    host, port = driver.address
    return f"{host}:{port}"


async def test_node_prints_identity_answers_ping_and_stops_on_interrupt(
    dht_nodes: list[DhtDriver], tmp_path: Path
) -> None:
    state = tmp_path / "node.json"
    process = await asyncio.create_subprocess_exec(
        *CLI, "node", "--host", "127.0.0.1", "--no-ip-restrictions", "--json",
        "--state", str(state), "--bootstrap", _addr(dht_nodes[0]),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        async with asyncio.timeout(20):
            identity = json.loads(await process.stdout.readline())
        assert len(bytes.fromhex(identity["node_id"])) == 20
        assert identity["address"].startswith("127.0.0.1:")

        code, out, err = await run_cli("ping", identity["address"], *LOCAL, "--json")
        assert code == 0, err
        assert json.loads(out)["node_id"] == identity["node_id"]
        code, out, err = await run_cli("ping", identity["address"], *LOCAL)
        assert code == 0 and f"node ID {identity['node_id']}" in out, err

        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(20):
            await process.wait()
        assert process.returncode == 0
        assert json.loads(state.read_text())["node_id"] == identity["node_id"]
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_announce_then_get_peers_finds_the_peer(dht_nodes: list[DhtDriver]) -> None:
    info_hash = "ab" * 20
    boot = ["--bootstrap", _addr(dht_nodes[0])]
    code, out, err = await run_cli("announce", info_hash, "--port", "4321", *boot, *LOCAL)
    assert code == 0, err
    assert "announced" in out
    code, out, err = await run_cli("get-peers", info_hash, *boot, *LOCAL, "--json")
    assert code == 0, err
    assert "127.0.0.1:4321" in json.loads(out)["peers"]


async def test_put_and_get_immutable_and_mutable_items(
    dht_nodes: list[DhtDriver], tmp_path: Path
) -> None:
    boot = ["--bootstrap", _addr(dht_nodes[1]), "--bootstrap", _addr(dht_nodes[2])]
    code, out, err = await run_cli("put", "hello from the cli", *boot, *LOCAL, "--json")
    assert code == 0, err
    target = json.loads(out)["target"]
    code, out, err = await run_cli("get", target, *boot, *LOCAL)
    assert code == 0, err
    assert out.strip() == "hello from the cli"

    key = tmp_path / "item.key"
    code, out, err = await run_cli(
        "put", "version two", "--key", str(key), "--salt", "s1", "--seq", "2", *boot, *LOCAL,
        "--json",
    )
    assert code == 0, err
    put = json.loads(out)
    assert put["seq"] == 2 and key.exists()
    code, out, err = await run_cli("get", put["public_key"], "--salt", "s1", *boot, *LOCAL,
                                   "--json")
    assert code == 0, err
    got = json.loads(out)
    assert got["value"] == "version two" and got["seq"] == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ping", "no-port-here"], "not HOST:PORT"),
        (["get-peers", "xyz", "--bootstrap", "127.0.0.1:1"], "not an info-hash"),
        (["get", "12", "--bootstrap", "127.0.0.1:1", "--timeout", "5"], "not a target"),
        (["announce", "ab" * 20, "--port", "0", "--bootstrap", "127.0.0.1:1"], "out of range"),
    ],
)
async def test_bad_input_is_one_error_line(args: list[str], message: str) -> None:
    code, _, err = await run_cli(*args)
    assert code == 1
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


async def test_silent_bootstrap_node_ends_within_the_timeout() -> None:
    import socket

    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        port = silent.getsockname()[1]
        code, _, err = await run_cli(
            "get-peers", "cd" * 20, "--bootstrap", f"127.0.0.1:{port}", "--host", "127.0.0.1",
            "--timeout", "1.5", limit=15,
        )
    finally:
        silent.close()
    assert code == 1
    assert err.count("\n") == 1 and ("no result within" in err or "no bootstrap" in err)
