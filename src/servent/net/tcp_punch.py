"""TCP simultaneous open from the listening port: the TCP half of a BEP 55 hole punch.

A NAT lets a peer's SYN in only as the answer to a SYN we sent to that peer
from the port the peer was told, our listening port.  :class:`TcpPuncher`
dials from that port (``SO_REUSEADDR`` + ``SO_REUSEPORT``; the listener sets
``SO_REUSEPORT`` too), on the schedule of
:class:`~servent.proto.tcp_punch.PunchSchedule`, and returns the connected
socket.  Which end speaks first on it comes from
:func:`~servent.proto.tcp_punch.punch_role`: the responder hands the socket
to the listener's protocol (as an incoming connection), the initiator dials
on it.  See ``docs/holepunch.md`` and decision 0048.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
from collections import Counter
from collections.abc import Callable

from servent.codec.compact import Address
from servent.net.encrypted_transport import Connector
from servent.proto.tcp_punch import PunchSchedule

__all__ = ["TcpPuncher", "reuse_port_supported"]

log = logging.getLogger(__name__)

_WILDCARDS = frozenset({"", "0.0.0.0", "::"})


def reuse_port_supported() -> bool:
    """Whether this system lets two sockets bind one TCP port (Linux, the BSDs, macOS)."""
    return hasattr(socket, "SO_REUSEPORT")


class TcpPuncher:
    """Dials peers from the listening port ``host``:``port`` (``host`` None: any address).

    ``accept`` is the listener's protocol factory: a punched connection on which
    we are the responder goes the way of any incoming connection."""

    def __init__(
        self,
        host: str | None,
        port: int,
        accept: Callable[[], asyncio.BaseProtocol],
        schedule: PunchSchedule | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.accept = accept
        self.schedule = schedule or PunchSchedule()
        #: "connected", "refused", "timed out", "failed" (statistics and tests).
        self.outcomes: Counter[str] = Counter()

    def _bound_socket(self, remote_host: str) -> socket.socket:
        """A non-blocking TCP socket bound to our listening address and port."""
        family = socket.AF_INET6 if ":" in remote_host else socket.AF_INET
        host = self.host
        if host is None or host in _WILDCARDS:
            host = "::" if family == socket.AF_INET6 else "0.0.0.0"
        elif (":" in host) != (family == socket.AF_INET6):
            raise OSError(errno.EAFNOSUPPORT, f"listening on {host}, cannot reach {remote_host}")
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host, self.port))
        except BaseException:
            sock.close()
            raise
        return sock

    async def open(self, remote: Address) -> socket.socket:
        """A TCP connection to ``remote`` from our listening port, within the schedule's
        window; raises :class:`OSError` (the last attempt's error) or :class:`TimeoutError`."""
        loop = asyncio.get_running_loop()
        schedule = self.schedule
        started = loop.time()
        failed = 0
        error: OSError | None = None
        while (at := schedule.next_attempt(started, loop.time(), failed)) is not None:
            await asyncio.sleep(max(0.0, at - loop.time()))  # a retry's gap (bounded)
            sock = self._bound_socket(remote[0])
            try:
                async with asyncio.timeout_at(schedule.deadline(started)):
                    await _connect(loop, sock, remote)
            except TimeoutError:  # an OSError too: the window is over, no retry
                sock.close()
                self.outcomes["timed out"] += 1
                raise
            except OSError as exc:
                sock.close()
                failed += 1
                error = exc
                log.debug("TCP punch to %s:%d, attempt %d: %s", *remote, failed, exc)
                continue
            except BaseException:
                sock.close()
                raise
            self.outcomes["connected"] += 1
            return sock
        self.outcomes["refused" if _refused(error) else "failed"] += 1
        raise error or TimeoutError("no TCP punch attempt fitted in the window")

    async def answer(self, sock: socket.socket) -> None:
        """We are the responder: the listener takes the connection as an incoming one."""
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(self.accept, sock=sock)
        except BaseException:
            sock.close()
            raise

    @staticmethod
    def connector(sock: socket.socket) -> Connector:
        """A :data:`Connector` for :func:`dial_peer` that yields the punched socket once
        (a second call, e.g. a plaintext retry after MSE, finds it gone)."""
        spare = [sock]

        async def connect(
            factory: Callable[[], asyncio.BaseProtocol], host: str, port: int
        ) -> object:
            if not spare:
                raise ConnectionAbortedError("the punched connection was used and closed")
            loop = asyncio.get_running_loop()
            try:
                return await loop.create_connection(factory, sock=spare.pop())
            except BaseException:
                sock.close()
                raise

        return connect


async def _connect(loop: asyncio.AbstractEventLoop, sock: socket.socket, remote: Address) -> None:
    """``connect`` on a non-blocking socket: the SYN leaves now; wait until it is answered."""
    code = sock.connect_ex(remote)
    if code not in (0, errno.EINPROGRESS):
        raise OSError(code, os.strerror(code))
    if code == 0:
        return
    writable: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not writable.done():
            writable.set_result(None)

    loop.add_writer(sock.fileno(), ready)
    try:
        await writable
    finally:
        loop.remove_writer(sock.fileno())
    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if code:
        raise OSError(code, os.strerror(code))


def _refused(error: OSError | None) -> bool:
    return error is not None and error.errno in (errno.ECONNREFUSED, errno.ECONNRESET)
