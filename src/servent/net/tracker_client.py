"""Asyncio tracker clients: HTTP via aiohttp, UDP via a datagram endpoint (BEP 15).

Decoding is done by :mod:`servent.codec.tracker`; this module only moves bytes,
bounds how much it reads, caches UDP connection IDs for a minute and retries
with the BEP 15 back-off (``base_timeout * 2**n``, bounded by ``max_retries``
so tests and impatient callers stay fast).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import aiohttp

from servent.codec.tracker import (
    MAX_HTTP_RESPONSE,
    AnnounceRequest,
    AnnounceResponse,
    ScrapeEntry,
    UdpAnnounceRequest,
    UdpAnnounceResponse,
    UdpConnectRequest,
    UdpConnectResponse,
    UdpErrorResponse,
    UdpRequest,
    UdpResponse,
    UdpScrapeRequest,
    UdpScrapeResponse,
    announce_url,
    decode_udp_response,
    encode_udp_request,
    parse_announce_response,
    parse_scrape_response,
    scrape_query,
    scrape_url,
)
from servent.errors import TrackerError, TrackerFailureError

log = logging.getLogger(__name__)

CONNECTION_ID_LIFETIME = 60.0


@dataclass(frozen=True, slots=True)
class UdpRetryPolicy:
    """BEP 15 says 15 s doubling up to 8 retries; callers may shorten it."""

    base_timeout: float = 15.0
    max_retries: int = 3


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > MAX_HTTP_RESPONSE:
            raise TrackerError(f"tracker response exceeds {MAX_HTTP_RESPONSE} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _http_get(session: aiohttp.ClientSession, url: str, limit_s: float) -> bytes:
    try:
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=limit_s), allow_redirects=False
        ) as response:
            if response.status != 200:
                raise TrackerError(f"tracker answered HTTP {response.status}")
            return await _read_bounded(response)
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        raise TrackerError(f"tracker unreachable: {exc!r}") from exc


class _UdpExchange(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue(maxsize=64)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if not self.replies.full():
            self.replies.put_nowait(data)


class TrackerClient:
    """Announce and scrape over HTTP(S) and UDP; one per node (owns its HTTP session)."""

    def __init__(
        self,
        *,
        http_timeout: float = 30.0,
        udp_retry: UdpRetryPolicy | None = None,
        max_peers: int = 2000,
    ) -> None:
        self.http_timeout = http_timeout
        self.udp_retry = udp_retry or UdpRetryPolicy()
        self.max_peers = max_peers
        self._session: aiohttp.ClientSession | None = None
        self._connection_ids: dict[tuple[str, int], tuple[int, float]] = {}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> TrackerClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def announce(self, url: str, req: AnnounceRequest) -> AnnounceResponse:
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme in ("http", "https"):
            body = await _http_get(self._http(), announce_url(url, req), self.http_timeout)
            return parse_announce_response(body, max_peers=self.max_peers)
        if scheme == "udp":
            host, port = _udp_address(url)
            reply = await self._udp_request(
                host, port, lambda cid, tid: UdpAnnounceRequest(cid, tid, req)
            )
            if not isinstance(reply, UdpAnnounceResponse):
                raise TrackerError("UDP tracker answered an announce with another action")
            return reply.response
        raise TrackerError(f"unsupported tracker scheme {scheme!r}")

    async def scrape(self, url: str, info_hashes: list[bytes]) -> dict[bytes, ScrapeEntry]:
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme in ("http", "https"):
            target = scrape_url(url)
            if target is None:
                raise TrackerError(f"{url} has no scrape URL")
            body = await _http_get(
                self._http(), scrape_query(target, info_hashes), self.http_timeout
            )
            return dict(parse_scrape_response(body).files)
        if scheme == "udp":
            host, port = _udp_address(url)
            reply = await self._udp_request(
                host, port, lambda cid, tid: UdpScrapeRequest(cid, tid, tuple(info_hashes))
            )
            if not isinstance(reply, UdpScrapeResponse):
                raise TrackerError("UDP tracker answered a scrape with another action")
            return dict(zip(info_hashes, reply.entries, strict=False))
        raise TrackerError(f"unsupported tracker scheme {scheme!r}")

    async def _udp_request(self, host: str, port: int, build: Any) -> UdpResponse:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        transport, protocol = await loop.create_datagram_endpoint(
            _UdpExchange, remote_addr=(host, port), family=family
        )
        exchange = protocol
        ipv6 = family == socket.AF_INET6
        try:
            key = (host, port)
            cached = self._connection_ids.get(key)
            if cached is None or time.monotonic() - cached[1] > CONNECTION_ID_LIFETIME:
                connect = await self._udp_roundtrip(transport, exchange, UdpConnectRequest, ipv6)
                if not isinstance(connect, UdpConnectResponse):
                    raise TrackerError("UDP tracker did not answer connect")
                cached = (connect.connection_id, time.monotonic())
                self._connection_ids[key] = cached
                if len(self._connection_ids) > 1000:
                    self._connection_ids.pop(next(iter(self._connection_ids)))
            cid = cached[0]
            reply = await self._udp_roundtrip(
                transport, exchange, lambda tid: build(cid, tid), ipv6
            )
            if isinstance(reply, UdpErrorResponse):
                self._connection_ids.pop(key, None)
                raise TrackerFailureError(f"tracker error: {reply.message[:300]}")
            return reply
        finally:
            transport.close()

    async def _udp_roundtrip(
        self, transport: asyncio.DatagramTransport, exchange: _UdpExchange, build: Any, ipv6: bool
    ) -> UdpResponse:
        policy = self.udp_retry
        for attempt in range(policy.max_retries + 1):
            tid = secrets.randbits(32)
            message: UdpRequest = build(tid)
            transport.sendto(encode_udp_request(message))
            deadline = time.monotonic() + policy.base_timeout * 2**attempt
            while (remaining := deadline - time.monotonic()) > 0:
                try:  # asyncio.timeout: wait_for can lose a cancel on 3.11 (announce loop)
                    async with asyncio.timeout(remaining):
                        data = await exchange.replies.get()
                except TimeoutError:
                    break
                try:
                    reply = decode_udp_response(data, ipv6=ipv6, max_peers=self.max_peers)
                except TrackerError as exc:
                    log.debug("ignored bad UDP tracker reply: %s", exc)
                    continue
                if reply.transaction_id == tid:
                    return reply
        raise TrackerError(f"UDP tracker did not answer after {policy.max_retries + 1} tries")


def _udp_address(url: str) -> tuple[str, int]:
    split = urllib.parse.urlsplit(url)
    try:
        port = split.port
    except ValueError as exc:
        raise TrackerError(f"bad UDP tracker URL {url!r}") from exc
    if not split.hostname or not port:
        raise TrackerError(f"UDP tracker URL {url!r} needs a host and a port")
    return split.hostname, port
