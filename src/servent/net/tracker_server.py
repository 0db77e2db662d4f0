"""The built-in tracker: HTTP (aiohttp) and UDP (BEP 15) on one port number.

All swarm logic lives in :class:`~servent.proto.tracker_state.TrackerState`;
this module only moves requests in and answers out.  UDP connection IDs are
keyed hashes of the client's IP and the current minute, so the server
keeps no per-client state for them (a spoofed source cannot get one back).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import random
import socket
import time
from typing import Any, cast

from aiohttp import web

from servent.codec.compact import Address, is_ipv6
from servent.codec.tracker import (
    UdpAnnounceRequest,
    UdpAnnounceResponse,
    UdpConnectRequest,
    UdpConnectResponse,
    UdpErrorResponse,
    UdpResponse,
    UdpScrapeResponse,
    decode_udp_request,
    encode_announce_response,
    encode_failure,
    encode_scrape_response,
    encode_udp_response,
    parse_announce_query,
    parse_scrape_query,
)
from servent.errors import TrackerError
from servent.proto.tracker_state import TrackerConfig, TrackerState

log = logging.getLogger(__name__)

_CONNECTION_ID_LIFETIME = 60.0


def _raw_query(request: web.Request) -> str:
    """The query string still percent-encoded (aiohttp's own is decoded as UTF-8,
    which mangles binary info-hashes)."""
    return request.raw_path.partition("?")[2]


class _UdpTrackerProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: TrackerServer) -> None:
        self._server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        source: Address = (addr[0], addr[1])
        reply = self._server.handle_datagram(data, source)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


class TrackerServer:
    """Run with ``await start()``; ``await close()`` stops sockets and the expiry task."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        config: TrackerConfig | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.state = TrackerState(config, rng=rng or random.Random())
        self._secret = os.urandom(16)
        self._runner: web.AppRunner | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._expiry: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- HTTP
    async def _announce(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        source: Address = (peer[0], peer[1]) if peer else ("0.0.0.0", 0)
        try:
            req = parse_announce_query(_raw_query(request))
            resp = self.state.announce(req, source, time.monotonic())
            body = encode_announce_response(resp, compact=req.compact)
        except TrackerError as exc:
            log.info("refused announce from %s: %s", source[0], exc)
            body = encode_failure(str(exc))
        return web.Response(body=body, content_type="text/plain")

    async def _scrape(self, request: web.Request) -> web.Response:
        try:
            hashes = parse_scrape_query(_raw_query(request))
            body = encode_scrape_response({h: self.state.scrape(h) for h in hashes})
        except TrackerError as exc:
            body = encode_failure(str(exc))
        return web.Response(body=body, content_type="text/plain")

    # ----------------------------------------------------------------- UDP
    def _connection_id(self, source: Address, bucket: int) -> int:
        # Bound to the IP only: clients may send each request from a new port.
        material = f"{source[0]}|{bucket}".encode()
        digest = hashlib.blake2b(material, key=self._secret, digest_size=8).digest()
        return int.from_bytes(digest, "big")

    def _valid_connection_id(self, source: Address, connection_id: int, now: float) -> bool:
        bucket = int(now // _CONNECTION_ID_LIFETIME)
        return connection_id in (
            self._connection_id(source, bucket),
            self._connection_id(source, bucket - 1),
        )

    def handle_datagram(self, data: bytes, source: Address) -> bytes | None:
        """Answer one UDP request (None drops it silently)."""
        now = time.monotonic()
        try:
            msg = decode_udp_request(data)
        except TrackerError as exc:
            log.debug("dropped UDP tracker datagram from %s: %s", source[0], exc)
            return None
        reply: UdpResponse
        if isinstance(msg, UdpConnectRequest):
            cid = self._connection_id(source, int(now // _CONNECTION_ID_LIFETIME))
            reply = UdpConnectResponse(msg.transaction_id, cid)
        elif not self._valid_connection_id(source, msg.connection_id, now):
            reply = UdpErrorResponse(msg.transaction_id, "unknown connection id")
        elif isinstance(msg, UdpAnnounceRequest):
            try:
                resp = self.state.announce(msg.request, source, now)
            except TrackerError as exc:
                reply = UdpErrorResponse(msg.transaction_id, str(exc))
            else:
                reply = UdpAnnounceResponse(msg.transaction_id, resp)
        else:
            entries = tuple(self.state.scrape(h) for h in msg.info_hashes)
            reply = UdpScrapeResponse(msg.transaction_id, entries)
        return encode_udp_response(reply, ipv6=is_ipv6(source[0]))

    # ----------------------------------------------------------- lifecycle
    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/announce", self._announce)
        app.router.add_get("/scrape", self._scrape)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        family = socket.AF_INET6 if is_ipv6(self.host) else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpTrackerProtocol(self), local_addr=(self.host, self.port)
        )
        self._udp = transport
        self._expiry = asyncio.create_task(self._expire_loop(), name="tracker-expiry")
        log.info("tracker listening on %s port %d (HTTP and UDP)", self.host, self.port)

    async def _expire_loop(self) -> None:
        period = max(1.0, min(60.0, self.state.config.interval / 2))
        while True:
            await asyncio.sleep(period)
            self.state.expire(time.monotonic())

    async def close(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry
        if self._udp is not None:
            self._udp.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> TrackerServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
