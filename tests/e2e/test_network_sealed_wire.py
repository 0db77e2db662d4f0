"""The peer wire of a network torrent on the wire: what a capture between two
members shows (sealed frames, neither the info-hash nor any of the file), and
the MSE-RC4 way of decision 0041 refused (``docs/networks.md`` section 8)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
from pathlib import Path

import pytest

from network_nodes import address, not_allowed, running_node, wait_for
from servent.errors import MseError
from servent.net.encrypted_transport import dial_peer
from servent.net.sealed_stream import sealed_outcomes
from servent.proto.mse import EncryptionPolicy
from servent.proto.network.sealed import MAGIC, SealedInitiator

pytestmark = pytest.mark.asyncio


class RecordingRelay:
    """A loopback TCP relay to one target that keeps every byte it forwards."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.upstream = bytearray()  # dialler -> target
        self.downstream = bytearray()  # target -> dialler
        self.server: asyncio.Server | None = None
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> RecordingRelay:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        far_reader, far_writer = await asyncio.open_connection(*self.target)
        for source, sink, record in (
            (reader, far_writer, self.upstream),
            (far_reader, writer, self.downstream),
        ):
            task = asyncio.get_running_loop().create_task(self._pump(source, sink, record))
            self._tasks.add(task)

    @staticmethod
    async def _pump(
        source: asyncio.StreamReader, sink: asyncio.StreamWriter, record: bytearray
    ) -> None:
        try:
            while data := await source.read(65536):
                record += data
                sink.write(data)
                await sink.drain()
        finally:
            sink.close()


def _without_addresses(magnet: str) -> str:
    """The magnet with no peer address nor tracker: the relay is the only way in."""
    head, _, query = magnet.partition("?")
    kept = [p for p in query.split("&") if not p.startswith(("x.pe=", "tr="))]
    return head + "?" + "&".join(kept)


async def test_a_capture_between_members_holds_no_info_hash_and_no_plaintext(
    tmp_path: Path,
) -> None:
    content = os.urandom(1_000_000)
    shared = tmp_path / "shares" / "secret"
    shared.mkdir(parents=True)
    (shared / "secret.bin").write_bytes(content)
    async with running_node(tmp_path, "admin") as admin, running_node(tmp_path, "bob") as bob:
        admin.networks.create("club")
        await bob.networks.join(admin.networks.invite("club")["invite"])
        share = await admin.networks.share("club", str(shared))
        found = await bob.networks.search("club", "secret")
        info_hash = bytes.fromhex(share["id"])
        sealed_before = sealed_outcomes["sealed"]
        async with RecordingRelay(address(admin)) as relay:
            magnet = _without_addresses(found[0]["magnet"])
            got = await bob.add(magnet, peers=[("127.0.0.1", relay.port)])
            await wait_for(lambda: bob.torrent(got).progress >= 1.0, "bob fetches via the relay")
        received = Path(bob.config.effective_download_dir) / "secret" / "secret.bin"
        assert received.read_bytes() == content
        assert sealed_outcomes["sealed"] >= sealed_before + 2  # both ends of the relay
        captured = bytes(relay.upstream) + bytes(relay.downstream)
        assert len(captured) > len(content)  # the whole file went through the relay
        assert relay.upstream.startswith(MAGIC)
        for secret in (info_hash[:20], info_hash.hex().encode(), b"BitTorrent protocol",
                       b"secret.bin", b"ut_metadata"):  # fmt: skip
            assert secret not in captured
        for at in range(0, len(content) - 32, 4096):  # every 4 KiB, a 32-byte window
            assert content[at : at + 32] not in captured


async def test_mse_rc4_with_the_current_swarm_key_is_refused_for_a_network_torrent(
    tmp_path: Path,
) -> None:
    async with running_node(tmp_path, "admin") as admin:
        admin.networks.create("club")
        shared = tmp_path / "shares" / "old"
        shared.mkdir(parents=True)
        (shared / "old.bin").write_bytes(os.urandom(50_000))
        share = await admin.networks.share("club", str(shared))
        info_hash = bytes.fromhex(share["id"])
        key = admin.networks.swarm_key(info_hash)  # the right key, the old (0041) way
        assert key is not None
        before = not_allowed(admin)
        session = asyncio.BufferedProtocol()  # never reached: the handshake fails first
        host, port = address(admin)
        with pytest.raises(MseError):
            await dial_peer(
                session, host, port,
                info_hash=key, policy=EncryptionPolicy.REQUIRED, connect_timeout=10.0,
            )  # fmt: skip
        await wait_for(lambda: not_allowed(admin) > before, "the MSE-RC4 dial is refused")


async def _closed_after(host: str, port: int, data: bytes) -> bytes:
    """Send ``data``, return whatever comes back until the member closes (bounded)."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(data)
        return await asyncio.wait_for(reader.read(1 << 20), 30)
    finally:
        writer.close()


async def test_hostile_sealed_starts_and_frames_drop_the_peer_and_members_are_still_served(
    tmp_path: Path,
) -> None:
    async with running_node(tmp_path, "admin") as admin, running_node(tmp_path, "bob") as bob:
        admin.networks.create("club")
        await bob.networks.join(admin.networks.invite("club")["invite"])
        shared = tmp_path / "shares" / "kept"
        shared.mkdir(parents=True)
        content = os.urandom(300_000)
        (shared / "kept.bin").write_bytes(content)
        await admin.networks.share("club", str(shared))
        found = await bob.networks.search("club", "kept")
        info_hash = bytes.fromhex(found[0]["infohash"])
        host, port = address(admin)
        # a sealed start with a tag of no key: closed, not a byte back
        before = not_allowed(admin)
        assert await _closed_after(host, port, MAGIC + os.urandom(64)) == b""
        await wait_for(lambda: not_allowed(admin) > before, "a wrong tag is refused")
        # a member's real handshake, then an oversized frame: the connection is dropped
        key = bob.networks.swarm_key(info_hash)
        assert key is not None
        who = bob.networks.wire_identity
        member = SealedInitiator(info_hash, key, who, lambda k: True)
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(member.data_to_send())
            while member.result is None:
                member.receive_data(await asyncio.wait_for(reader.read(4096), 30))
            writer.write(member.data_to_send() + struct.pack(">I", 2**31) + bytes(64))
            assert await asyncio.wait_for(reader.read(1 << 20), 30) == b""
        finally:
            writer.close()
        got = await bob.add(found[0]["magnet"], peers=[address(admin)])
        await wait_for(lambda: bob.torrent(got).progress >= 1.0, "bob is still served")
        received = Path(bob.config.effective_download_dir) / "kept" / "kept.bin"
        assert received.read_bytes() == content
