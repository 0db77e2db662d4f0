"""The addresses a torrent may dial, with back-off for the ones that fail.

Peers come from the user (``--peer``), and later from trackers, the DHT and
PEX.  A dropped connection is replaced by dialling the next due address; an
address that keeps failing is retried with exponential back-off and given up
after ``max_failures`` consecutive failures, so a dead peer costs little.
"""

from __future__ import annotations

from dataclasses import dataclass

from servent.proto.connection_scoring import (
    CandidateHistory,
    dialable_while_seeding,
    rank_candidates,
)
from servent.proto.mse import EncryptionPolicy

Address = tuple[str, int]


@dataclass(slots=True)
class KnownPeer:
    address: Address
    source: str = "manual"
    failures: int = 0
    next_attempt: float = 0.0
    #: A connection (or a dial) to this address exists now.
    busy: bool = False
    #: A connection to it once completed the handshake.
    ever_connected: bool = False
    last_error: str | None = None
    #: Dial with the torrent's aria2 info-hash alias (see ``aria2_info_hash``).
    alias: bool = False
    #: Payload bytes this address delivered over all past connections.
    delivered: int = 0
    #: A seed (True), a leecher (False) or unknown (None): PEX flags, or the last connection.
    seed: bool | None = None
    #: PEX said it prefers encryption: dial it with MSE only (once; see ``failed``).
    prefers_encryption: bool = False
    #: PEX said its reporter dialled it (BEP 11 "reachable").
    reachable: bool = False

    @property
    def behind_nat(self) -> bool:
        """Learnt by PEX without the reachable flag: probably behind a NAT (a punch's job)."""
        return self.source == "pex" and not self.reachable

    def history(self) -> CandidateHistory:
        return CandidateHistory(
            self.source,
            self.failures,
            self.ever_connected,
            self.delivered,
            self.seed,
            self.reachable,
        )

    def dial_policy(self, policy: EncryptionPolicy) -> EncryptionPolicy:
        """The encryption to dial it with: MSE only (no plaintext offered) when it
        prefers encryption and ``policy`` allows encryption at all."""
        if self.prefers_encryption and policy is EncryptionPolicy.ENABLED:
            return EncryptionPolicy.REQUIRED
        return policy


class KnownPeers:
    """Addresses to dial, bounded in number, with per-address back-off."""

    def __init__(
        self,
        *,
        max_failures: int = 5,
        base_backoff: float = 1.0,
        max_backoff: float = 60.0,
        reconnect_delay: float = 2.0,
        limit: int = 2000,
    ) -> None:
        self.max_failures = max_failures
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.reconnect_delay = reconnect_delay
        self.limit = limit
        self._peers: dict[Address, KnownPeer] = {}

    def __len__(self) -> int:
        return len(self._peers)

    def __contains__(self, address: object) -> bool:
        return address in self._peers

    def get(self, address: Address) -> KnownPeer | None:
        return self._peers.get(address)

    def entries(self) -> list[KnownPeer]:
        """Every known address (a copy of the list, for statistics and tests)."""
        return list(self._peers.values())

    def add(self, address: Address, *, source: str = "manual") -> bool:
        """Remember ``address``; a known one that was given up on gets a fresh start."""
        peer = self._peers.get(address)
        if peer is not None:
            if peer.failures >= self.max_failures:
                peer.failures = 0
                peer.next_attempt = 0.0
            return False
        if len(self._peers) >= self.limit:
            return False
        self._peers[address] = KnownPeer(address, source)
        return True

    def remove(self, address: Address) -> None:
        self._peers.pop(address, None)

    def note_flags(
        self, address: Address, *, seed: bool, prefers_encryption: bool, reachable: bool = False
    ) -> None:
        """What a PEX message said of a known address (hearsay: only steers the order)."""
        peer = self._peers.get(address)
        if peer is not None and not peer.busy:
            peer.seed = seed
            peer.prefers_encryption = prefers_encryption
            peer.reachable = reachable

    def due(self, now: float, count: int, *, seeding: bool = False) -> list[KnownPeer]:
        """Up to ``count`` addresses to dial now (not busy, back-off over, not given up),
        best scored first (:mod:`servent.proto.connection_scoring`); while ``seeding``
        none known to be a seed."""
        if count <= 0:
            return []
        eligible = [
            peer
            for peer in self._peers.values()
            if not peer.busy and peer.failures < self.max_failures and peer.next_attempt <= now
        ]
        return rank_candidates(eligible, KnownPeer.history, count, seeding=seeding)

    def has_due(self, now: float, *, seeding: bool = False) -> bool:
        """Whether some address could be dialled now."""
        return any(
            not peer.busy
            and peer.failures < self.max_failures
            and peer.next_attempt <= now
            and (not seeding or dialable_while_seeding(peer.history()))
            for peer in self._peers.values()
        )

    def dialling(self, address: Address) -> None:
        peer = self._peers.get(address)
        if peer is not None:
            peer.busy = True

    def connected(self, address: Address) -> None:
        """The handshake completed: the address works, forget its failures."""
        peer = self._peers.get(address)
        if peer is not None:
            peer.busy = True
            peer.failures = 0
            peer.ever_connected = True
            peer.last_error = None

    def failed(self, address: Address, now: float, error: str) -> None:
        """A dial or handshake failed: back off exponentially."""
        peer = self._peers.get(address)
        if peer is None:
            return
        peer.busy = False
        peer.failures += 1
        peer.last_error = error
        # The encryption hint was hearsay: the next attempt uses the torrent's policy.
        peer.prefers_encryption = False
        backoff = min(self.max_backoff, self.base_backoff * 2 ** (peer.failures - 1))
        peer.next_attempt = now + backoff

    def defer(self, address: Address, until: float) -> None:
        """Dial ``address`` directly no sooner than ``until`` (a hole punch is pending)."""
        peer = self._peers.get(address)
        if peer is not None:
            peer.next_attempt = max(peer.next_attempt, until)

    def penalise(self, address: Address, reason: str) -> None:
        """Count a strike against an address that connected but was useless (it sinks
        in the dial order without being given up on at once)."""
        peer = self._peers.get(address)
        if peer is not None:
            peer.failures += 1
            peer.last_error = reason

    def disconnected(
        self, address: Address, now: float, delivered: int = 0, *, seed: bool | None = None
    ) -> None:
        """A working connection ended (having delivered ``delivered`` payload bytes, from
        a peer that had every piece if ``seed``): dial again after a short pause."""
        peer = self._peers.get(address)
        if peer is None:
            return
        peer.busy = False
        peer.delivered += delivered
        if seed is not None:
            peer.seed = seed
        peer.next_attempt = now + self.reconnect_delay

    def exhausted(self) -> bool:
        """Every address was given up on (and nothing is being dialled)."""
        return all(
            not peer.busy and peer.failures >= self.max_failures for peer in self._peers.values()
        )

    def errors(self) -> list[str]:
        """``host:port: error`` for addresses whose last attempt failed."""
        return [
            f"{_format(peer.address)}: {peer.last_error}"
            for peer in self._peers.values()
            if peer.last_error is not None
        ]


def _format(address: Address) -> str:
    host, port = address
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
