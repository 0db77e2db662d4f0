"""Real reference peers on loopback for interop tests: libtorrent and aria2.

Everything here binds to loopback explicitly (the machine has other
interfaces, and both clients default to all of them) and turns off every
public discovery mechanism (DHT routers, LSD multicast, UPnP, NAT-PMP), so a
test never talks to the Internet.  Each resource is a context manager that
tears its client down on exit, whether the test passed or failed.

* :class:`LibtorrentPeer` / :func:`libtorrent_peer` — a ``libtorrent.session``
  with every setting passed at construction (settings applied later leave
  libtorrent listening on 0.0.0.0:6881 for a moment), listening on port 0 and
  reading the port back; ``dht=True`` gives the loopback-DHT variant.
* :func:`create_torrent_with_libtorrent` — v1, v2 or hybrid .torrent bytes.
* :class:`Aria2Process` / :func:`aria2c` — ``aria2c`` as seeder or leecher.
* :class:`LoopbackTracker` — a tiny HTTP tracker at ``/announce`` for aria2,
  which cannot be told about a peer any other way.
* :func:`wait_until` — poll a real condition with a deadline (for third-party
  clients that offer no awaitable event).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import time
import urllib.parse
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import libtorrent as lt

from servent.codec.bencode import encode

LOOPBACK = "127.0.0.1"
LOOPBACK6 = "::1"
#: Default bound on every wait in this module.
DEADLINE = 60.0
POLL_INTERVAL = 0.02

VERSION_FLAGS = {"v1": lt.create_torrent.v1_only, "v2": lt.create_torrent.v2_only, "hybrid": 0}


# --------------------------------------------------------------------- waiting


async def wait_until(condition: Callable[[], object], what: str, within: float = DEADLINE) -> None:
    """Poll ``condition`` until it is true; fail with ``what`` after ``within`` seconds.

    Only for third-party clients (libtorrent status, a process's files), which
    offer nothing to await; servent's own code is awaited directly.
    """
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(POLL_INTERVAL)  # polling a real condition, bounded by the deadline


async def wait_listening(host: str, port: int, within: float = DEADLINE) -> None:
    """Wait until something accepts TCP connections on ``host:port`` (e.g. aria2 started)."""
    deadline = time.monotonic() + within
    while True:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
        except (OSError, TimeoutError):
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port}") from None
            await asyncio.sleep(0.05)  # retry a refused connection, bounded by the deadline
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


def free_port(host: str = LOOPBACK) -> int:
    """A port a client that refuses port 0 (aria2) can take; the tiny race is acceptable."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------- payloads


def write_payload(path: Path, size: int, seed: int = 1) -> bytes:
    """Write ``size`` reproducible pseudo-random bytes to ``path``; return them."""
    rng = random.Random(seed)
    chunk = 16 * 1024 * 1024  # randbytes cannot make more than 256 MiB at once
    data = b"".join(rng.randbytes(min(chunk, size - at)) for at in range(0, size, chunk))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def write_content(root: Path, files: Mapping[str, int], first_seed: int = 1) -> dict[str, bytes]:
    """The shared folder ``root/content`` (relative path -> size); path -> bytes written."""
    return {
        name: write_payload(root / "content" / name, size, seed=number)
        for number, (name, size) in enumerate(files.items(), start=first_seed)
    }


def assert_content(root: Path, expected: Mapping[str, bytes]) -> None:
    """``root/content`` holds exactly the bytes of ``expected`` (path -> bytes)."""
    for name, data in expected.items():
        assert (root / "content" / name).read_bytes() == data, name


def create_torrent_with_libtorrent(
    path: Path, *, version: str = "hybrid", piece_length: int = 64 * 1024
) -> bytes:
    """Hash the file or folder ``path`` with libtorrent; ``version`` is v1, v2 or hybrid."""
    with warnings.catch_warnings():  # file_storage API: deprecated in 2.1, still exact
        warnings.simplefilter("ignore", DeprecationWarning)
        files = lt.file_storage()
        lt.add_files(files, str(path))
        creator = lt.create_torrent(files, piece_length, VERSION_FLAGS[version])
    lt.set_piece_hashes(creator, str(path.parent))
    return bytes(lt.bencode(creator.generate()))


# ------------------------------------------------------------------- libtorrent


def libtorrent_settings(
    *, host: str = LOOPBACK, port: int = 0, dht: bool = False, **overrides: Any
) -> dict[str, Any]:
    """Settings for a session that stays on ``host`` (loopback) and never goes public.

    TCP only: servent does not speak uTP yet, and libtorrent's uTP falls back
    to TCP only after about 3 s.  Outgoing encryption is off so libtorrent
    opens plain BitTorrent handshakes to servent.  ``dht=True`` enables a DHT
    fit for many nodes sharing one IP (libtorrent's defences reject that).
    """
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    categories = lt.alert.category_t
    mask = (
        categories.error_notification
        | categories.status_notification
        | categories.storage_notification
        | categories.peer_notification
        | categories.connect_notification
        | categories.ip_block_notification
    )
    settings: dict[str, Any] = {
        "listen_interfaces": listen,
        "outgoing_interfaces": host,
        "enable_dht": dht,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        "listen_system_port_fallback": False,
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        "out_enc_policy": 2,  # pe_disabled: plain handshakes
        "in_enc_policy": 1,  # pe_enabled: accepts plain and encrypted
        "max_failcount": 100,  # a peer dialled before it listens is not given up on
        "min_reconnect_time": 1,
        "allow_multiple_connections_per_ip": True,  # every test peer is 127.0.0.1
        "user_agent": "libtorrent-interop",
        "alert_mask": mask,
    }
    if dht:
        settings.update(
            {
                "dht_restrict_routing_ips": False,
                "dht_restrict_search_ips": False,
                "dht_block_ratelimit": 1_000_000,
                "dht_upload_rate_limit": 100_000_000,
                "dht_enforce_node_id": False,
                "dht_prefer_verified_node_ids": False,
                "alert_mask": mask
                | categories.dht_notification
                | categories.dht_operation_notification,
            }
        )
    settings.update(overrides)
    return settings


class LibtorrentPeer:
    """One libtorrent session on loopback.  Use :func:`libtorrent_peer` to get one torn down."""

    def __init__(self, *, host: str = LOOPBACK, dht: bool = False, **settings: Any) -> None:
        self.host = host
        self.session = lt.session(libtorrent_settings(host=host, dht=dht, **settings))
        self.alerts: list[Any] = []
        self._handles: list[lt.torrent_handle] = []
        self._flushed: list[lt.torrent_handle] = []

    @property
    def port(self) -> int:
        """The TCP port libtorrent listens on (it was asked for port 0)."""
        return int(self.session.listen_port())

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    def add_torrent(
        self,
        torrent: bytes,
        save_path: Path,
        *,
        seed: bool,
        upload_limit: int = 0,
        download_limit: int = 0,
    ) -> lt.torrent_handle:
        """Add ``torrent``; ``seed=True`` trusts the data in ``save_path`` (seed mode)."""
        params = lt.add_torrent_params()
        params.ti = lt.torrent_info(lt.bdecode(torrent))
        params.save_path = str(save_path)
        if seed:
            params.flags |= lt.torrent_flags.seed_mode
        params.flags &= ~lt.torrent_flags.auto_managed
        params.flags &= ~lt.torrent_flags.paused
        handle = self.session.add_torrent(params)
        if upload_limit:
            handle.set_upload_limit(upload_limit)
        if download_limit:
            handle.set_download_limit(download_limit)
        self._handles.append(handle)
        return handle

    def connect(self, handle: lt.torrent_handle, host: str, port: int) -> None:
        """Dial a peer over TCP (flags: encryption allowed, no uTP, so TCP at once)."""
        handle.connect_peer((host, port), 0, 1)

    def drain_alerts(self) -> list[Any]:
        """Collect pending alerts (kept in :attr:`alerts` for diagnostics)."""
        new = list(self.session.pop_alerts())
        self.alerts.extend(new)
        self._flushed.extend(a.handle for a in new if isinstance(a, lt.cache_flushed_alert))
        if len(self.alerts) > 2000:
            del self.alerts[:-1000]
        return new

    async def wait_for(
        self, condition: Callable[[], object], what: str, within: float = DEADLINE
    ) -> None:
        """Poll ``condition`` (draining alerts meanwhile) with a deadline."""

        def check() -> object:
            self.drain_alerts()
            return condition()

        try:
            await wait_until(check, what, within)
        except TimeoutError as exc:
            messages = [a.message() for a in self.alerts[-15:]]
            raise TimeoutError(f"{exc}; last libtorrent alerts: {messages}") from None

    async def wait_seeding(self, handle: lt.torrent_handle, within: float = DEADLINE) -> None:
        """Until the torrent runs as a seed (libtorrent refuses peers of inactive torrents)."""

        def seeding() -> bool:
            status = handle.status()
            return bool(status.state == lt.torrent_status.seeding and not status.paused)

        await self.wait_for(seeding, "libtorrent to start seeding", within)

    async def wait_complete(self, handle: lt.torrent_handle, within: float = DEADLINE) -> None:
        """Until libtorrent has downloaded and verified every piece, and written it to disk.

        libtorrent hashes blocks from its write queue, so a torrent can be
        "seeding" before the last blocks reach the file: flush and wait for
        the ``cache_flushed_alert`` before anyone reads the file.
        """
        await self.wait_for(
            lambda: handle.status().is_seeding, "libtorrent to finish downloading", within
        )
        await self.flush(handle, within)

    async def flush(self, handle: lt.torrent_handle, within: float = DEADLINE) -> None:
        """Write libtorrent's queued blocks of ``handle`` to its files."""
        self.drain_alerts()
        self._flushed = [h for h in self._flushed if h != handle]
        handle.flush_cache()

        def flushed() -> bool:
            return handle in self._flushed

        await self.wait_for(flushed, "libtorrent to flush its disk cache", within)

    def info_hash(self, handle: lt.torrent_handle) -> bytes:
        hashes = handle.info_hashes()
        if hashes.has_v1():
            return bytes(hashes.v1.to_bytes())
        return bytes(hashes.v2.to_bytes())[:20]

    def close(self) -> None:
        """Stop every torrent and drop the session (its threads end with it)."""
        for handle in self._handles:
            with contextlib.suppress(Exception):
                self.session.remove_torrent(handle)
        self._handles.clear()
        with contextlib.suppress(Exception):
            self.session.pause()
        self.alerts.clear()
        del self.session


@contextlib.contextmanager
def libtorrent_peer(
    *, host: str = LOOPBACK, dht: bool = False, **settings: Any
) -> Iterator[LibtorrentPeer]:
    """A :class:`LibtorrentPeer` closed on exit even when the test fails."""
    peer = LibtorrentPeer(host=host, dht=dht, **settings)
    try:
        yield peer
    finally:
        peer.close()


async def libtorrent_seeder(
    peer: LibtorrentPeer, torrent: bytes, save_path: Path, **limits: int
) -> lt.torrent_handle:
    """Add ``torrent`` as a seed and wait until libtorrent accepts peers for it."""
    handle = peer.add_torrent(torrent, save_path, seed=True, **limits)
    await peer.wait_seeding(handle)
    return handle


# ------------------------------------------------------------------------ aria2

ARIA2_COMMON = (
    "--no-conf",
    "--enable-dht=false",
    "--enable-dht6=false",
    "--bt-enable-lpd=false",
    "--enable-peer-exchange=false",
    "--bt-exclude-tracker=*",
    "--disable-ipv6=true",
    "--summary-interval=0",
    "--console-log-level=warn",
)


class Aria2Process:
    """An ``aria2c`` child process; :func:`aria2c` kills it on exit."""

    def __init__(self, args: Sequence[str], listen_port: int) -> None:
        self.args = list(args)
        self.listen_port = listen_port
        self.process: asyncio.subprocess.Process | None = None
        self.output = b""

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            "aria2c",
            *self.args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )

    @property
    def address(self) -> tuple[str, int]:
        return (LOOPBACK, self.listen_port)

    async def wait_listening(self, within: float = DEADLINE) -> None:
        await wait_listening(LOOPBACK, self.listen_port, within)

    async def wait(self, within: float = DEADLINE) -> int:
        """Wait for aria2 to exit (a leecher with ``--seed-time=0`` exits when verified)."""
        assert self.process is not None
        try:
            out, _ = await asyncio.wait_for(self.process.communicate(), within)
        except TimeoutError:
            raise TimeoutError(f"aria2c still running after {within:.0f} s") from None
        self.output += out
        assert self.process.returncode is not None
        return self.process.returncode

    def log_tail(self, size: int = 2000) -> str:
        return self.output.decode(errors="replace")[-size:]

    async def stop(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        with contextlib.suppress(Exception):
            out, _ = await asyncio.wait_for(process.communicate(), 10.0)
            self.output += out


def aria2_seeder_args(torrent_file: Path, data_dir: Path, listen_port: int) -> list[str]:
    """aria2 seeding the complete payload in ``data_dir`` (checked first), accepting dials."""
    return [
        *ARIA2_COMMON,
        f"--listen-port={listen_port}",
        f"--interface={LOOPBACK}",
        "--check-integrity=true",
        "--seed-ratio=0.0",
        f"--dir={data_dir}",
        str(torrent_file),
    ]


def aria2_leecher_args(
    torrent_file: Path, out_dir: Path, listen_port: int, tracker_url: str | None = None
) -> list[str]:
    """aria2 downloading into ``out_dir``, exiting once complete and verified."""
    args = [
        *ARIA2_COMMON,
        f"--listen-port={listen_port}",
        f"--interface={LOOPBACK}",
        "--seed-time=0",
        "--file-allocation=none",
        "--bt-hash-check-seed=true",
        f"--dir={out_dir}",
    ]
    if tracker_url is not None:
        args.append(f"--bt-tracker={tracker_url}")
    args.append(str(torrent_file))
    return args


@contextlib.asynccontextmanager
async def aria2c(args: Sequence[str], listen_port: int) -> AsyncIterator[Aria2Process]:
    """Run ``aria2c ARGS``; the process is killed on exit even if the test failed."""
    process = Aria2Process(args, listen_port)
    await process.start()
    try:
        yield process
    finally:
        await process.stop()


# ---------------------------------------------------------------------- tracker


class LoopbackTracker:
    """A minimal HTTP tracker on 127.0.0.1 at ``/announce`` (BEP 3, compact peers).

    It answers every announce with the peers that announced for the same
    info-hash plus those added with :meth:`add_peer`, so aria2 (which has no
    way to be handed a peer) can find a seeder.  Only for tests: requests are
    bounded, nothing is persisted.
    """

    MAX_REQUEST = 8192

    def __init__(self) -> None:
        self.peers: dict[bytes, dict[tuple[str, int], None]] = {}
        self.announces: list[tuple[bytes, tuple[str, int]]] = []
        self._server: asyncio.Server | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/announce"

    def add_peer(self, info_hash: bytes, host: str, port: int) -> None:
        self.peers.setdefault(info_hash, {})[(host, port)] = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, LOOPBACK, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
            if len(head) > self.MAX_REQUEST:
                raise ValueError("request too large")
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            target = line.split(" ")[1]
            path, _, query = target.partition("?")
            if path != "/announce":
                body = encode({b"failure reason": b"unknown path"})
            else:
                body = self._announce(query, writer.get_extra_info("peername")[0])
            writer.write(
                b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (OSError, ValueError, IndexError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _announce(self, query: str, remote_ip: str) -> bytes:
        fields: dict[str, bytes] = {}
        for part in query.split("&"):
            key, _, value = part.partition("=")
            fields[key] = urllib.parse.unquote_to_bytes(value)
        info_hash = fields.get("info_hash", b"")
        port = int(fields.get("port", b"0"))
        if len(info_hash) != 20:
            return encode({b"failure reason": b"bad info_hash"})
        known = self.peers.setdefault(info_hash, {})
        others = [peer for peer in known if peer != (remote_ip, port)]
        if fields.get("event") != b"stopped" and 0 < port < 65536:
            known[(remote_ip, port)] = None
            self.announces.append((info_hash, (remote_ip, port)))
        compact = b"".join(
            socket.inet_aton(host) + port.to_bytes(2, "big")
            for host, port in others
            if ":" not in host
        )
        return encode({b"interval": 5, b"min interval": 1, b"peers": compact})


@contextlib.asynccontextmanager
async def loopback_tracker() -> AsyncIterator[LoopbackTracker]:
    tracker = LoopbackTracker()
    await tracker.start()
    try:
        yield tracker
    finally:
        await tracker.close()
