"""The built-in tracker under hostile load, over real loopback sockets.

One address (127.0.0.2) floods the tracker; another (127.0.0.3) must still be
served.  Every wait has a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import sys
import time

import pytest

from servent.codec.tracker import (
    AnnounceRequest,
    UdpAnnounceRequest,
    UdpAnnounceResponse,
    UdpConnectRequest,
    UdpConnectResponse,
    announce_url,
    decode_udp_response,
    encode_udp_request,
    parse_announce_response,
    parse_scrape_response,
    scrape_query,
)
from servent.errors import TrackerFailureError
from servent.net.tracker_http import HttpLimits
from servent.net.tracker_server import TrackerServer
from servent.proto.tracker_state import TrackerConfig

FLOODER, OTHER = "127.0.0.2", "127.0.0.3"
FLOOD = 20_000
DEADLINE = 120.0


def announce(info_hash: bytes, peer: int, port: int = 6881) -> AnnounceRequest:
    return AnnounceRequest(
        info_hash=info_hash, peer_id=peer.to_bytes(20, "big"), port=port, left=1, event="started"
    )


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return await reader.readexactly(length)


async def http_get_many(
    port: int, source: str, targets: list[str], batch: int = 250
) -> list[bytes]:
    """GET every target over one kept-alive connection from ``source`` (pipelined)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    bodies: list[bytes] = []
    try:
        for start in range(0, len(targets), batch):
            chunk = targets[start : start + batch]
            writer.write(b"".join(f"GET {t} HTTP/1.1\r\nHost: t\r\n\r\n".encode() for t in chunk))
            await writer.drain()
            for _ in chunk:
                bodies.append(await _read_response(reader))
    finally:
        writer.close()
    return bodies


def _path(url: str) -> str:
    return url.partition("//")[2].partition("/")[1] + url.partition("//")[2].partition("/")[2]


def is_failure(body: bytes) -> str | None:
    try:
        parse_announce_response(body)
    except TrackerFailureError as exc:
        return str(exc).removeprefix("tracker failure: ")
    return None


async def flood(port: int) -> list[bytes]:
    """FLOOD announces of distinct info-hashes from FLOODER over four connections."""
    base = f"http://127.0.0.1:{port}/announce"
    targets = [_path(announce_url(base, announce(n.to_bytes(20, "big"), n))) for n in range(FLOOD)]
    quarters = [targets[i::4] for i in range(4)]
    results = await asyncio.wait_for(
        asyncio.gather(*(http_get_many(port, FLOODER, q) for q in quarters)), DEADLINE
    )
    return [body for bodies in results for body in bodies]


async def udp_announce(port: int, source: str, req: AnnounceRequest) -> UdpAnnounceResponse:
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setblocking(False)
        sock.bind((source, 0))
        sock.connect(("127.0.0.1", port))
        await loop.sock_sendall(sock, encode_udp_request(UdpConnectRequest(1)))
        connect = decode_udp_response(await asyncio.wait_for(loop.sock_recv(sock, 2048), 10))
        assert isinstance(connect, UdpConnectResponse)
        await loop.sock_sendall(
            sock, encode_udp_request(UdpAnnounceRequest(connect.connection_id, 2, req))
        )
        reply = decode_udp_response(await asyncio.wait_for(loop.sock_recv(sock, 2048), 10))
    assert isinstance(reply, UdpAnnounceResponse), reply
    return reply


async def assert_other_address_is_served(server: TrackerServer) -> None:
    """OTHER starts a new swarm (HTTP and UDP), sees its peers, and scrapes it."""
    port = server.port
    info_hash = b"\xab" * 20
    base = f"http://127.0.0.1:{port}/announce"
    first, second = await http_get_many(
        port, OTHER, [_path(announce_url(base, announce(info_hash, 1, 7001)))]
    ) + await http_get_many(port, OTHER, [_path(announce_url(base, announce(info_hash, 2, 7002)))])
    assert parse_announce_response(first).peers == ()
    assert parse_announce_response(second).peers == ((OTHER, 7001),)
    udp = await udp_announce(port, OTHER, announce(info_hash, 3, 7003))
    assert set(udp.response.peers) == {(OTHER, 7001), (OTHER, 7002)}
    scrape = scrape_query(f"http://127.0.0.1:{port}/scrape", [info_hash])
    (body,) = await http_get_many(port, OTHER, [_path(scrape)])
    assert parse_scrape_response(body).files[info_hash].incomplete == 3


async def test_one_address_announcing_20000_torrents_does_not_lock_out_another() -> None:
    """Default limits: the flooder is rate limited and capped at its share of swarms."""
    async with TrackerServer("127.0.0.1", 0, rng=random.Random(1)) as server:
        started = time.monotonic()
        bodies = await flood(server.port)
        elapsed = time.monotonic() - started
        assert len(bodies) == FLOOD  # every request was answered, none hung
        reasons = [is_failure(b) for b in bodies]
        accepted = reasons.count(None)
        config = server.state.config
        most = config.request_burst_per_ip + config.request_rate_per_ip * (elapsed + 1)
        assert 0 < accepted <= min(most, config.max_swarms_per_ip)
        assert {r for r in reasons if r} <= {
            "too many requests from your address; retry later",
            f"your address already has {config.max_swarms_per_ip} torrents on this tracker "
            "(the limit)",
        }
        assert server.state.swarms_created_by(FLOODER) == accepted == len(server.state)
        await assert_other_address_is_served(server)


async def test_a_full_table_still_takes_a_torrent_from_another_address() -> None:
    """No rate limit and no per-address cap: the flooder fills the table, and the
    newcomer's swarm replaces one of the flooder's."""
    config = TrackerConfig(max_torrents=1000, max_swarms_per_ip=FLOOD, request_rate_per_ip=0)
    async with TrackerServer("127.0.0.1", 0, config=config, rng=random.Random(1)) as server:
        bodies = await flood(server.port)
        reasons = [is_failure(b) for b in bodies]
        assert reasons.count(None) == 1000
        assert set(reasons) == {None, "tracker is full"}
        await assert_other_address_is_served(server)
        assert len(server.state) == 1000
        assert server.state.swarms_created_by(FLOODER) == 999


async def wait_closed_by_server(reader: asyncio.StreamReader, within: float) -> float:
    """Seconds until the server closes (EOF or reset); fails after ``within``."""
    started = time.monotonic()
    try:
        data = await asyncio.wait_for(reader.read(), within)
    except ConnectionResetError:
        data = b""
    assert data == b""
    return time.monotonic() - started


async def test_a_half_sent_request_is_closed_after_the_read_timeout() -> None:
    limits = HttpLimits(read_timeout=1.0)
    async with TrackerServer("127.0.0.1", 0, http_limits=limits) as server:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, local_addr=(FLOODER, 0)
        )
        writer.write(b"GET /announce?info_hash=")
        await writer.drain()
        assert 0.5 <= await wait_closed_by_server(reader, 20.0) < 20.0
        writer.close()
        assert HttpLimits().read_timeout <= 10  # the default is short as well


async def test_a_trickling_request_does_not_extend_its_deadline() -> None:
    limits = HttpLimits(read_timeout=1.0)
    async with TrackerServer("127.0.0.1", 0, http_limits=limits) as server:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, local_addr=(FLOODER, 0)
        )
        closed = asyncio.create_task(wait_closed_by_server(reader, 20.0))
        trickle = b"GET /announce?info_hash=" + b"a" * 400
        for byte in trickle:  # one byte every 0.1 s: 40 s if never cut off
            if closed.done():
                break
            writer.write(bytes([byte]))
            try:
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.sleep(0.1)  # pacing of the slow client, not synchronisation
        assert await closed < 20.0
        writer.close()


async def test_connections_per_address_are_capped() -> None:
    limits = HttpLimits(read_timeout=30.0, max_connections_per_ip=3)
    async with TrackerServer("127.0.0.1", 0, http_limits=limits) as server:
        admission = server.http.admission
        idle = [
            await asyncio.open_connection("127.0.0.1", server.port, local_addr=(FLOODER, 0))
            for _ in range(3)
        ]
        deadline = time.monotonic() + DEADLINE
        while admission.open_from(FLOODER) < 3:
            assert time.monotonic() < deadline, "the server never counted the connections"
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, local_addr=(FLOODER, 0)
        )
        await wait_closed_by_server(reader, 20.0)  # the fourth is turned away
        writer.close()
        await assert_other_address_is_served(server)  # other addresses are not affected
        idle[0][1].close()
        while admission.open_from(FLOODER) > 2:
            assert time.monotonic() < deadline, "the server never saw the close"
            await asyncio.sleep(0.01)
        url = announce_url(f"http://127.0.0.1:{server.port}/announce", announce(b"\x01" * 20, 9))
        (body,) = await http_get_many(server.port, FLOODER, [_path(url)])
        assert is_failure(body) is None  # a slot came free
        for _, idle_writer in idle[1:]:
            idle_writer.close()


@pytest.mark.parametrize("head", [b"POST /announce HTTP/1.1\r\n\r\n", b"GET /x HTTP/1.1\r\n\r\n"])
async def test_other_methods_and_paths_get_an_error_status(head: bytes) -> None:
    async with TrackerServer("127.0.0.1", 0) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(head)
        status = await asyncio.wait_for(reader.readline(), 10)
        assert status.split()[1] in (b"404", b"405")
        writer.close()


async def test_a_malformed_head_gets_400_and_an_endless_one_is_cut_off() -> None:
    async with TrackerServer("127.0.0.1", 0, http_limits=HttpLimits(read_timeout=30.0)) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GARBAGE\r\n\r\n")
        assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"HTTP/1.1 400 ")
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /announce?" + b"a" * 64 * 1024)  # never ends, far past 8 KiB
        await wait_closed_by_server(reader, 20.0)  # long before the 30 s read timeout
        writer.close()


def _run_tracker_cli(*flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "servent", "tracker", "--port", "0", "--host", "127.0.0.1", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def test_servent_tracker_flags_set_the_limits() -> None:
    process = _run_tracker_cli(
        "--read-timeout", "1", "--max-swarms-per-ip", "2", "--request-rate", "0"
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), DEADLINE)
        port = int(line.split("udp port ")[1])
        base = f"http://127.0.0.1:{port}/announce"
        targets = [_path(announce_url(base, announce(bytes([n]) * 20, n))) for n in range(3)]
        bodies = await http_get_many(port, FLOODER, targets)
        assert [is_failure(b) for b in bodies] == [
            None,
            None,
            "your address already has 2 torrents on this tracker (the limit)",
        ]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(OTHER, 0))
        writer.write(b"GET /announce?info_hash=")
        assert await wait_closed_by_server(reader, 20.0) < 20.0
        writer.close()
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--read-timeout", "0"), ("--max-connections-per-ip", "0"), ("--request-rate", "-1")],
)
def test_servent_tracker_rejects_a_bad_limit_in_one_line(flag: str, value: str) -> None:
    process = _run_tracker_cli(flag, value)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert flag in stderr and "Traceback" not in stderr


async def test_silent_peers_and_their_empty_swarms_expire_on_a_running_tracker() -> None:
    config = TrackerConfig(interval=1, min_interval=1, request_rate_per_ip=0)
    async with TrackerServer("127.0.0.1", 0, config=config) as server:
        base = f"http://127.0.0.1:{server.port}/announce"
        targets = [_path(announce_url(base, announce(bytes([n]) * 20, n))) for n in range(5)]
        await http_get_many(server.port, FLOODER, targets)
        assert len(server.state) == 5 and server.state.swarms_created_by(FLOODER) == 5
        deadline = time.monotonic() + DEADLINE
        while len(server.state):  # two intervals of silence, then the expiry pass
            assert time.monotonic() < deadline, "silent peers were never expired"
            await asyncio.sleep(0.1)
        assert server.state.swarms_created_by(FLOODER) == 0
