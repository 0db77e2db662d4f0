"""The built-in tracker's HTTP listener: a deliberately small HTTP/1.1 server.

A tracker needs GET requests with a query string and short bencoded answers,
nothing else, and it faces the open internet.  A general server (aiohttp)
sets no deadline on reading a request head, so a client that sends half a
request holds the connection, and a file descriptor, for as long as it likes.
Here every request head must arrive within ``read_timeout`` (an idle
keep-alive connection gets the same time), heads are bounded, and concurrent
connections are capped per client and in total; a connection over a cap is
reset at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from servent.codec.compact import Address
from servent.codec.http_request import (
    MAX_REQUEST_HEAD,
    RequestHead,
    encode_response,
    parse_request_head,
)
from servent.errors import TrackerError
from servent.proto.tracker_limits import ConnectionAdmission

log = logging.getLogger(__name__)

Respond = Callable[[RequestHead, Address], tuple[int, bytes]]
"""Turns one request from a source address into a status code and a body."""

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


@dataclass(frozen=True, slots=True)
class HttpLimits:
    read_timeout: float = 10.0
    """Seconds a request head (or the next one on a kept-alive connection) may take."""
    max_connections: int = 512
    max_connections_per_ip: int = 8
    max_requests_per_connection: int = 10_000


class TrackerHttpListener:
    """Serve ``respond`` on a bound socket: ``await start(sock)``, ``await close()``."""

    def __init__(self, respond: Respond, limits: HttpLimits | None = None) -> None:
        self._respond = respond
        self.limits = limits or HttpLimits()
        self.admission = ConnectionAdmission(
            self.limits.max_connections, self.limits.max_connections_per_ip
        )
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._serve, sock=sock, limit=MAX_REQUEST_HEAD)

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 5.0)
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        source: Address = (peer[0], peer[1]) if peer else ("0.0.0.0", 0)
        if not self.admission.admit(source[0]):
            log.debug("refused HTTP connection from %s: too many open", source[0])
            writer.transport.abort()
            return
        self._writers.add(writer)
        clean = False
        try:
            clean = await self._requests(reader, writer, source)
        except TimeoutError:
            log.debug("closed HTTP connection from %s: request too slow", source[0])
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self.admission.release(source[0])
            self._writers.discard(writer)
            if clean:
                writer.close()
            else:
                writer.transport.abort()

    async def _requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, source: Address
    ) -> bool:
        """Answer requests until the client is done; True when it closed cleanly."""
        timeout = self.limits.read_timeout
        for _ in range(self.limits.max_requests_per_connection):
            try:
                raw = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
            except asyncio.IncompleteReadError as exc:
                return not exc.partial  # EOF between requests is a normal goodbye
            try:
                head = parse_request_head(raw)
            except TrackerError as exc:
                writer.write(
                    encode_response(400, "Bad Request", str(exc).encode(), keep_alive=False)
                )
                await asyncio.wait_for(writer.drain(), timeout)
                return True
            status, body = self._respond(head, source)
            keep_alive = head.keep_alive and not head.has_body
            reason = _REASONS.get(status, "Error")
            writer.write(encode_response(status, reason, body, keep_alive=keep_alive))
            await asyncio.wait_for(writer.drain(), timeout)
            if not keep_alive:
                return True
        return True
