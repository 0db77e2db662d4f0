"""The built-in tracker over real loopback sockets (HTTP and UDP on one port)."""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import sys
import urllib.parse

import aiohttp

from servent.codec.tracker import (
    AnnounceRequest,
    UdpAnnounceRequest,
    UdpAnnounceResponse,
    UdpConnectRequest,
    UdpConnectResponse,
    UdpErrorResponse,
    UdpScrapeRequest,
    UdpScrapeResponse,
    announce_url,
    decode_udp_response,
    encode_udp_request,
    parse_announce_response,
    parse_scrape_response,
    scrape_query,
)
from servent.errors import TrackerFailureError
from servent.net.tracker_server import TrackerServer
from servent.proto.tracker_state import TrackerConfig

IH = b"h" * 20


def req(n: int, port: int) -> AnnounceRequest:
    return AnnounceRequest(
        info_hash=IH, peer_id=bytes([n]) * 20, port=port, left=10, event="started"
    )


_SOCKETS: dict[int, socket.socket] = {}


async def udp_exchange(port: int, payload: bytes) -> bytes:
    """Send from one client socket per tracker port (connection IDs are bound to it)."""
    loop = asyncio.get_running_loop()
    sock = _SOCKETS.get(port)
    if sock is None:
        sock = _SOCKETS[port] = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.connect(("127.0.0.1", port))
    await loop.sock_sendall(sock, payload)
    return await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)


def teardown_module() -> None:
    for sock in _SOCKETS.values():
        sock.close()


async def test_http_announce_lists_the_other_peer_and_scrape_counts_both() -> None:
    async with (
        TrackerServer("127.0.0.1", 0, rng=random.Random(1)) as server,
        aiohttp.ClientSession() as http,
    ):
        base = f"http://127.0.0.1:{server.port}/announce"
        async with http.get(announce_url(base, req(1, 7001))) as r:
            assert parse_announce_response(await r.read()).peers == ()
        async with http.get(announce_url(base, req(2, 7002))) as r:
            assert parse_announce_response(await r.read()).peers == (("127.0.0.1", 7001),)
        url = scrape_query(f"http://127.0.0.1:{server.port}/scrape", [IH])
        async with http.get(url) as r:
            assert parse_scrape_response(await r.read()).files[IH].incomplete == 2


async def test_http_announce_with_bad_query_gets_a_failure_reason() -> None:
    async with TrackerServer("127.0.0.1", 0) as server, aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{server.port}/announce?info_hash=short&port=1") as r:
            body = await r.read()
        try:
            parse_announce_response(body)
        except TrackerFailureError as exc:
            assert "20 bytes" in str(exc)
        else:
            raise AssertionError("expected a failure reason")


async def test_udp_connect_announce_scrape_on_the_same_port() -> None:
    async with TrackerServer("127.0.0.1", 0) as server:
        await udp_exchange(server.port, encode_udp_request(UdpAnnounceRequest(5, 1, req(1, 7001))))
        connect = decode_udp_response(
            await udp_exchange(server.port, encode_udp_request(UdpConnectRequest(42)))
        )
        assert isinstance(connect, UdpConnectResponse) and connect.transaction_id == 42
        cid = connect.connection_id
        # a second client on HTTP, then UDP sees it
        async with (
            aiohttp.ClientSession() as http,
            http.get(announce_url(f"http://127.0.0.1:{server.port}/announce", req(2, 7002))) as r,
        ):
            await r.read()
        reply = decode_udp_response(
            await udp_exchange(
                server.port, encode_udp_request(UdpAnnounceRequest(cid, 43, req(1, 7001)))
            )
        )
        assert isinstance(reply, UdpAnnounceResponse) and reply.transaction_id == 43
        assert reply.response.peers == (("127.0.0.1", 7002),)
        scrape = decode_udp_response(
            await udp_exchange(server.port, encode_udp_request(UdpScrapeRequest(cid, 44, (IH,))))
        )
        assert isinstance(scrape, UdpScrapeResponse) and scrape.entries[0].incomplete == 2


async def test_udp_announce_with_a_forged_connection_id_is_refused() -> None:
    async with TrackerServer("127.0.0.1", 0) as server:
        reply = decode_udp_response(
            await udp_exchange(
                server.port, encode_udp_request(UdpAnnounceRequest(123, 9, req(1, 7001)))
            )
        )
        assert isinstance(reply, UdpErrorResponse) and "connection id" in reply.message
        assert server.state.peer_count(IH) == 0


def test_cli_tracker_rejects_a_bad_port_in_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "servent", "tracker", "--port", "70000"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "out of range" in proc.stderr and "Traceback" not in proc.stderr


def test_announce_url_quotes_binary_fields() -> None:
    url = announce_url("http://x/announce", req(255, 1))
    assert "peer_id=%FF%FF" in url and urllib.parse.urlsplit(url).path == "/announce"


async def test_binary_info_hash_with_high_bytes_survives_http() -> None:
    binary = AnnounceRequest(info_hash=bytes(range(236, 256)), peer_id=bytes([200]) * 20, port=1)
    async with TrackerServer("127.0.0.1", 0) as server, aiohttp.ClientSession() as http:
        async with http.get(announce_url(f"http://127.0.0.1:{server.port}/announce", binary)) as r:
            parse_announce_response(await r.read())
        assert server.state.peer_count(bytes(range(236, 256))) == 1


def test_cli_tracker_starts_and_prints_its_port() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "servent", "tracker", "--port", "0", "--host", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the process prints once it listens
        assert line.startswith("tracker on http://127.0.0.1:") and "/announce" in line
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_udp_announces_and_scrapes_share_the_per_address_rate_limit() -> None:
    config = TrackerConfig(request_rate_per_ip=0.001, request_burst_per_ip=2)
    server = TrackerServer("127.0.0.1", 0, config=config)
    source = ("127.0.0.2", 4000)
    connect = decode_udp_response(
        server.handle_datagram(encode_udp_request(UdpConnectRequest(1)), source) or b""
    )
    assert isinstance(connect, UdpConnectResponse)
    cid = connect.connection_id
    requests = [
        UdpAnnounceRequest(cid, 2, req(1, 7001)),
        UdpScrapeRequest(cid, 3, (IH,)),
        UdpAnnounceRequest(cid, 4, req(1, 7001)),
        UdpScrapeRequest(cid, 5, (IH,)),
    ]
    replies = [
        decode_udp_response(server.handle_datagram(encode_udp_request(r), source) or b"")
        for r in requests
    ]
    assert isinstance(replies[0], UdpAnnounceResponse)
    assert isinstance(replies[1], UdpScrapeResponse)
    for refused in replies[2:]:
        assert isinstance(refused, UdpErrorResponse) and "too many requests" in refused.message
