"""One port number free for TCP and UDP on every family, held until the node uses it.

A node that picks its own port (``listen_port = 0``) listens for peers over TCP
and, on the same number, runs uTP and the DHT over UDP.  Asking the kernel for a
UDP port and then hoping the same TCP number is free loses to any other process
that holds it (on a busy host it often does): the node then ends up with two
port numbers, which peers, NATs and firewalls all see.  :func:`reserve_port`
binds every socket the node needs on one number before anything else runs, and
keeps them bound, so no other process can take the number in between; the
listener and the UDP users take their sockets from the reservation.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
from collections.abc import Iterable, Iterator, Sequence

from servent.net.udp_demux import UdpPort, open_udp_socket

__all__ = ["ATTEMPTS", "PortReservation", "reservation_hosts", "reserve_port"]

log = logging.getLogger(__name__)

#: Numbers tried before giving up (each try is a fresh kernel pick: a clash is rare).
ATTEMPTS = 32
#: The listen backlog the peer listener asks for too (``PeerListener``).
BACKLOG = 256


class PortReservation:
    """Listening TCP sockets and bound UDP ports, one per family, all on :attr:`number`.

    Each user takes its sockets once (:meth:`take_tcp`, :meth:`take_udp`); what is
    left when the reservation is closed is closed with it."""

    def __init__(self, number: int, tcp: list[socket.socket], udp: list[UdpPort]) -> None:
        self.number = number
        self._tcp = tcp
        self._udp = udp

    @property
    def families(self) -> list[socket.AddressFamily]:
        """The address families reserved (IPv4 first)."""
        return [sock.family for sock in self._tcp]

    def take_tcp(self) -> list[socket.socket]:
        """The listening sockets, now the caller's to close (empty once taken)."""
        taken, self._tcp = self._tcp, []
        return taken

    def take_udp(self) -> list[UdpPort]:
        """The UDP ports, now the caller's to close (empty once taken)."""
        taken, self._udp = self._udp, []
        return taken

    def close(self) -> None:
        """Release whatever no one took."""
        for sock in self.take_tcp():
            sock.close()
        for port in self.take_udp():
            port.close()


def reservation_hosts(listen_host: str | None) -> list[str]:
    """The addresses a listen host stands for: ``None`` or "" is every IPv4 and IPv6 one."""
    return ["0.0.0.0", "::"] if not listen_host else [listen_host]


def reserve_port(
    hosts: Sequence[str],
    *,
    udp: bool = True,
    attempts: int = ATTEMPTS,
    first_choices: Iterable[int] = (),
) -> PortReservation:
    """Bind TCP (listening) and, with ``udp``, UDP on every host on one number.

    Numbers come from ``first_choices`` (a test names ports it made busy), then from
    the kernel (TCP port 0 on the first host).  A number taken on any socket is given
    up and the next tried, ``attempts`` times in all.  A host after the first that
    cannot be bound for another reason (IPv6 off) is left out with a warning, as the
    listener and the DHT do.  Raises :class:`OSError` when nothing fits."""
    candidates = _candidates(first_choices)
    wanted = list(hosts)
    last: OSError | None = None
    for _ in range(attempts):
        number = next(candidates)
        try:
            return _bind_all(wanted, number, udp=udp)
        except _FamilyUnavailable as gone:
            wanted.remove(gone.host)
            log.warning("peers, uTP and the DHT on %s only: cannot bind %s: %s",
                        ", ".join(wanted), gone.host, gone.reason)  # fmt: skip
            return reserve_port(wanted, udp=udp, attempts=attempts)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            log.debug("port %d is taken for TCP or UDP, trying another: %s", number, exc)
            last = exc
    raise OSError(errno.EADDRINUSE, f"no port free for TCP and UDP after {attempts} tries ({last})")


def _candidates(first_choices: Iterable[int]) -> Iterator[int]:
    yield from first_choices
    while True:
        yield 0


class _FamilyUnavailable(Exception):
    """A host after the first cannot be bound for a reason other than a taken port."""

    def __init__(self, host: str, reason: OSError) -> None:
        super().__init__(host, reason)
        self.host = host
        self.reason = reason


def _bind_all(hosts: list[str], number: int, *, udp: bool) -> PortReservation:
    """Every socket on ``number`` (0: the first TCP bind picks it), or none (OSError)."""
    tcp: list[socket.socket] = []
    ports: list[UdpPort] = []
    try:
        for index, host in enumerate(hosts):
            with _optional_family(host, index):
                tcp.append(_listening_socket(host, number))
            number = tcp[0].getsockname()[1]
        for index, host in enumerate(hosts if udp else []):
            with _optional_family(host, index):
                ports.append(UdpPort(open_udp_socket(host, number)))
    except BaseException:
        for sock in tcp:
            sock.close()
        for port in ports:
            port.close()
        raise
    return PortReservation(number, tcp, ports)


@contextlib.contextmanager
def _optional_family(host: str, index: int) -> Iterator[None]:
    """A taken port stays an OSError; another error of a later host is that family missing."""
    try:
        yield
    except OSError as exc:
        if index == 0 or exc.errno == errno.EADDRINUSE:
            raise
        raise _FamilyUnavailable(host, exc) from exc


def _listening_socket(host: str, number: int) -> socket.socket:
    """A non-blocking TCP socket listening on ``host:number``, as ``create_server`` makes
    it (``SO_REUSEADDR``, IPv6 only for an IPv6 host)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, number))
        sock.listen(BACKLOG)  # listening: no other socket can bind the number now
    except BaseException:
        sock.close()
        raise
    return sock
