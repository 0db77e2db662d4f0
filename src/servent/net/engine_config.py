"""Node-wide engine settings and the peer id this client shows to peers."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from servent.net.lsd import LSD_GROUP4, LSD_GROUP6, LSD_PORT
from servent.net.torrent_discovery import DiscoveryConfig
from servent.proto.peerwire import ConnectionConfig


def make_peer_id(version: str = "", rng: random.Random | None = None) -> bytes:
    """An Azureus-style peer id: ``-SVxyzw-`` (from ``version``, e.g. "0.1.0") and 12
    random printable bytes."""
    digits = "".join(part.zfill(1)[:1] for part in version.split(".")[:3] if part)
    prefix = f"-SV{digits:0<4}-".encode()
    alphabet = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    source = rng or random.SystemRandom()
    return prefix + bytes(source.choice(alphabet) for _ in range(20 - len(prefix)))


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Node-wide settings.  ``listen_host`` ``None`` = every IPv4 and IPv6 address."""

    listen_host: str | None = None
    listen_port: int = 0
    listen: bool = True
    max_connections: int | None = 200
    download_rate: float | None = None
    upload_rate: float | None = None
    #: Upload slots shared by all torrents (each also has its own ``upload_slots``).
    upload_slots: int | None = 16
    connection: ConnectionConfig = field(default_factory=ConnectionConfig)
    #: Message stream encryption (MSE/PE): "off", "enabled" or "required".
    encryption: str = "enabled"
    #: Local service discovery (BEP 14) by multicast on the LAN.
    lsd: bool = False
    #: IPv4 address of the interface LSD joins the group on (None: the default one).
    lsd_interface: str | None = None
    lsd_group: str = LSD_GROUP4
    lsd_port: int = LSD_PORT
    #: LSD over IPv4 and over IPv6 ([ff15::efc0:988f]): each joined when the host has it.
    lsd_ipv4: bool = True
    lsd_ipv6: bool = True
    #: IPv6 interface (name or index) LSD joins its group on (None: the default one).
    lsd_interface6: str | int | None = None
    lsd_group6: str = LSD_GROUP6
    #: Announce to the torrents' trackers (and scrape them).
    trackers: bool = True
    #: Trackers used for every torrent, after the torrent's own.
    extra_trackers: tuple[str, ...] = ()
    #: Schedules of trackers, DHT and LSD per torrent.
    discovery: DiscoveryConfig = field(default_factory=DiscoveryConfig)
    #: Peers dialled at once while fetching a magnet's metadata.
    metadata_parallel: int = 8
    #: servent's version, shown to peers in the peer id (passed down by the front end).
    client_version: str = ""
    #: uTP (BEP 29) on the listen port number, shared with the DHT's socket when it has it.
    utp: bool = False
    #: "prefer-tcp", "prefer-utp" or "tcp-only" (see :mod:`servent.net.peer_dialer`).
    utp_preference: str = "prefer-tcp"
    #: BEP 55 punches try TCP simultaneous open from the listening port too (decision 0048).
    holepunch_tcp: bool = False
