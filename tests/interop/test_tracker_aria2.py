"""aria2 downloads from a libtorrent seeder that it finds only through servent's
built-in tracker (HTTP, the only tracker transport aria2 uses without its DHT)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import warnings
from pathlib import Path

import libtorrent as lt
import pytest

from servent.net.tracker_server import TrackerServer

pytestmark = pytest.mark.interop

DEADLINE = 60.0


def make_torrent(tmp_path: Path, tracker_url: str) -> tuple[bytes, bytes]:
    seed_dir = tmp_path / "seed"
    seed_dir.mkdir()
    payload = seed_dir / "payload.bin"
    payload.write_bytes(bytes((i * 13) % 251 for i in range(300_000)))
    with warnings.catch_warnings():  # file_storage API: deprecated in 2.1, still exact
        warnings.simplefilter("ignore", DeprecationWarning)
        files = lt.file_storage()
        lt.add_files(files, str(payload))
        creator = lt.create_torrent(files, 32768, lt.create_torrent.v1_only)  # aria2 is v1-only
    creator.add_tracker(tracker_url)
    lt.set_piece_hashes(creator, str(seed_dir))
    return bytes(lt.bencode(creator.generate())), payload.read_bytes()


def free_port() -> int:
    """A port aria2 can take (it refuses 0); the tiny race is acceptable in a test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_aria2_downloads_through_servent_tracker(tmp_path: Path) -> None:
    async with TrackerServer("127.0.0.1", 0) as server:
        url = f"http://127.0.0.1:{server.port}/announce"
        torrent, payload = make_torrent(tmp_path, url)
        torrent_file = tmp_path / "t.torrent"
        torrent_file.write_bytes(torrent)
        session = lt.session(
            {
                "listen_interfaces": "127.0.0.1:0",
                "enable_dht": False,
                "enable_lsd": False,
                "enable_upnp": False,
                "enable_natpmp": False,
                "dht_bootstrap_nodes": "",
                "listen_system_port_fallback": False,
            }
        )
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(lt.bdecode(torrent))
        params.save_path = str(tmp_path / "seed")
        params.flags |= lt.torrent_flags.seed_mode
        session.add_torrent(params)
        info_hash = bytes(params.ti.info_hashes().v1.to_bytes())
        deadline = time.monotonic() + DEADLINE
        while server.state.peer_count(info_hash) == 0:
            assert time.monotonic() < deadline, "libtorrent never announced"
            await asyncio.sleep(0.05)  # polling a real condition with a deadline
        out = tmp_path / "out"
        proc = await asyncio.create_subprocess_exec(
            "aria2c", "--no-conf", "--enable-dht=false", "--enable-dht6=false",
            "--bt-enable-lpd=false", "--enable-peer-exchange=false",
            "--bt-exclude-tracker=*", f"--bt-tracker={url}", f"--listen-port={free_port()}",
            "--interface=127.0.0.1", "--disable-ipv6=true", "--seed-time=0",
            "--file-allocation=none", f"--dir={out}", str(torrent_file),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        try:
            stdout, _ = await asyncio.wait_for(proc.communicate(), DEADLINE)
        finally:
            if proc.returncode is None:
                proc.kill()
                with contextlib.suppress(ProcessLookupError):
                    await proc.wait()
            del session
        assert proc.returncode == 0, stdout.decode(errors="replace")[-2000:]
        assert (out / "payload.bin").read_bytes() == payload
