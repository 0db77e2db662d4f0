"""Ctrl-C is a normal stop; a bad config value is one clear line.

Real ``servent`` processes: a node, a seeder and a download are stopped with
SIGINT (what Ctrl-C sends); bad config files and flags are refused with one
line that names the file, the key and what is allowed.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from servent_cli import run_servent, servent

pytestmark = pytest.mark.e2e

NODE_FLAGS = (
    "--api-port", "0", "--listen-host", "127.0.0.1", "--listen-port", "0",
    "--dht-enabled", "false", "--lsd-enabled", "false",
)  # fmt: skip


def no_warning_or_traceback(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert "Traceback" not in text and " WARNING " not in text and " ERROR " not in text, text


@pytest.mark.parametrize("verbose", [False, True])
async def test_ctrl_c_stops_the_node_with_exit_0_and_an_info_line(
    tmp_path: Path, verbose: bool
) -> None:
    args = ("-v",) if verbose else ()
    async with servent(*args, "start", "--data-dir", tmp_path / "data", *NODE_FLAGS) as node:
        await node.wait_line(r"^servent is running")
        node.kill(signal.SIGINT)
        assert await node.wait() == 0
    no_warning_or_traceback(node.stderr)
    stopping = [line for line in node.stderr if "INFO servent.daemon.server: stopping" in line]
    assert len(stopping) == (1 if verbose else 0), node.stderr
    assert not (tmp_path / "data" / "daemon.json").exists()


async def test_ctrl_c_stops_a_seeder_with_exit_0(tmp_path: Path) -> None:
    (tmp_path / "album").mkdir()
    (tmp_path / "album" / "a.bin").write_bytes(b"x" * 50_000)
    args = ("seed", tmp_path / "album", "--host", "127.0.0.1", "--data-dir", tmp_path / "data")
    async with servent(*args) as seeder:
        await seeder.wait_line(r"^magnet:")
        seeder.kill(signal.SIGINT)
        assert await seeder.wait() == 0
    no_warning_or_traceback(seeder.stderr)


@pytest.fixture()
async def silent_peer() -> AsyncIterator[int]:
    """A TCP listener that accepts and never says a word: a download waits on it."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_ctrl_c_during_a_get_says_interrupted_and_exits_130(
    tmp_path: Path, silent_peer: int
) -> None:
    magnet = "magnet:?xt=urn:btih:" + "ab" * 20
    args = ("get", magnet, "--peer", f"127.0.0.1:{silent_peer}", "-o", tmp_path / "out")
    async with servent(*args, "--data-dir", tmp_path / "data") as download:
        await download.wait_line(r"fetching the metadata", stream="stderr")
        download.kill(signal.SIGINT)
        assert await download.wait() == 130, "\n".join(download.stderr)
    assert download.stderr[-1] == "servent: interrupted", download.stderr
    no_warning_or_traceback(download.stderr)


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("listen_port = 99999", ["listen_port", "99999", "0..65535"]),
        ('api_port = "x"', ["api_port", "an integer in 0..65535", "'x'"]),
        ("dht_enabled = 1", ["dht_enabled", "true or false"]),
        ('encryption = "yes"', ["encryption", "off, enabled, required", "'yes'"]),
        ("listen_prot = 5", ["listen_prot", "unknown setting", "did you mean listen_port"]),
        ("max_connections = = 3", ["not valid TOML", "line 1"]),
    ],
)
async def test_a_bad_config_value_is_one_line_naming_file_key_and_what_is_allowed(
    tmp_path: Path, text: str, needles: list[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "config.toml").write_text(text + "\n")
    code, out, err = await run_servent("start", "--data-dir", data)
    assert code == 1
    assert len(err) == 1, err
    assert err[0].startswith(f"servent: error: config file {data / 'config.toml'}: "), err
    for needle in needles:
        assert needle in err[0], (needle, err)
    assert out == []


async def test_a_bad_flag_value_names_the_flag(tmp_path: Path) -> None:
    code, _, err = await run_servent(
        "daemon", "--data-dir", tmp_path / "d", "--max-connections", "0"
    )
    assert (code, err) == (1, ["servent: error: --max-connections: 0 is outside 1..100000"])


async def test_a_command_without_a_node_names_the_readmes_start_command(tmp_path: Path) -> None:
    code, _, err = await run_servent("list", "--data-dir", tmp_path)
    assert code == 1
    assert err == [f"servent: error: no node runs for {tmp_path} "
                   f"(start it with: servent start --data-dir {tmp_path})"]  # fmt: skip
