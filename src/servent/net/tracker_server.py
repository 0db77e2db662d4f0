"""The built-in tracker: HTTP and UDP (BEP 15) on one port number.

All swarm logic and its limits live in
:class:`~servent.proto.tracker_state.TrackerState`; this module only moves
requests in and answers out (HTTP through :mod:`.tracker_http`).  UDP connection IDs are
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

from servent.codec.compact import Address, is_ipv6
from servent.codec.http_request import RequestHead
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
from servent.net.tracker_http import HttpLimits, TrackerHttpListener
from servent.proto.tracker_state import TrackerConfig, TrackerState

log = logging.getLogger(__name__)

_CONNECTION_ID_LIFETIME = 60.0


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
        http_limits: HttpLimits | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.state = TrackerState(config, rng=rng or random.Random())
        self._secret = os.urandom(16)
        self.http = TrackerHttpListener(self._respond, http_limits)
        self._udp: asyncio.DatagramTransport | None = None
        self._expiry: asyncio.Task[None] | None = None

    # ---------------------------------------------------------------- HTTP
    def _respond(self, head: RequestHead, source: Address) -> tuple[int, bytes]:
        """Answer one HTTP request: bencoded, with a failure reason when refused."""
        if head.method != "GET":
            return 405, encode_failure("only GET is supported")
        if head.path == "/announce":
            return 200, self._announce(head.query, source)
        if head.path == "/scrape":
            return 200, self._scrape(head.query, source)
        return 404, encode_failure("not found: this tracker serves /announce and /scrape")

    def _announce(self, query: str, source: Address) -> bytes:
        try:
            req = parse_announce_query(query)
            resp = self.state.announce(req, source, time.monotonic())
            return encode_announce_response(resp, compact=req.compact)
        except TrackerError as exc:
            log.debug("refused announce from %s: %s", source[0], exc)
            return encode_failure(str(exc))

    def _scrape(self, query: str, source: Address) -> bytes:
        try:
            hashes = parse_scrape_query(query)
            entries = self.state.scrape_from(hashes, source, time.monotonic())
            return encode_scrape_response(dict(zip(hashes, entries, strict=True)))
        except TrackerError as exc:
            return encode_failure(str(exc))

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
            try:
                entries = self.state.scrape_from(msg.info_hashes, source, now)
            except TrackerError as exc:
                reply = UdpErrorResponse(msg.transaction_id, str(exc))
            else:
                reply = UdpScrapeResponse(msg.transaction_id, tuple(entries))
        return encode_udp_response(reply, ipv6=is_ipv6(source[0]))

    # ----------------------------------------------------------- lifecycle
    async def start(self) -> None:
        family = socket.AF_INET6 if is_ipv6(self.host) else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        await self.http.start(sock)
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
        await self.http.close()

    async def __aenter__(self) -> TrackerServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
