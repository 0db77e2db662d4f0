"""One exception hierarchy for the whole project.

Everything servent raises on purpose derives from :class:`ServentError`, so a
front end can catch it, print one clear line and exit, while any other
exception is a bug.  Parsers of hostile input raise the most specific subclass
so callers (and tests) can tell *why* input was refused.
"""

from __future__ import annotations


class ServentError(Exception):
    """Base of every error servent raises deliberately."""


class DecodeError(ServentError):
    """Input bytes could not be decoded (bencode, wire messages, KRPC ...)."""


class BencodeError(DecodeError):
    """Malformed or non-canonical bencoded data."""


class BencodeTruncatedError(BencodeError):
    """The input ended in the middle of a value."""


class BencodeLimitError(BencodeError):
    """The input exceeds a size or nesting bound."""


class BencodeTrailingDataError(BencodeError):
    """Bytes remain after the top-level value."""


class BencodeNonCanonicalError(BencodeError):
    """Valid-looking but non-canonical input (leading zeros, -0, unsorted keys)."""


class MetainfoError(ServentError):
    """A torrent file is invalid."""


class UnsafePathError(MetainfoError):
    """A file path inside a torrent would escape the target folder or is unusable."""


class MagnetError(ServentError):
    """A magnet link is malformed."""


class ProtocolError(ServentError):
    """A peer broke the rules of a network protocol."""


class StorageError(ServentError):
    """Reading or writing payload data failed."""


class ConfigError(ServentError):
    """A setting or command-line value is invalid."""


class PeerWireError(ProtocolError):
    """A remote peer broke the peer wire protocol (BEP 3/6/10/52); disconnect it."""


class HandshakeError(PeerWireError):
    """The peer wire handshake is malformed, for another torrent, or from ourselves."""


class MessageTooLargeError(PeerWireError):
    """A peer wire message (or the receive buffer) exceeds its bound."""


class MalformedMessageError(PeerWireError):
    """A peer wire message has the wrong length or impossible field values."""


class UnexpectedMessageError(PeerWireError):
    """A well-formed message that the connection state forbids (unsolicited piece ...)."""


class RequestFloodError(PeerWireError):
    """A peer queued more block requests than we allow."""


class ExtensionNotSupportedError(PeerWireError):
    """The remote peer did not advertise the BEP 10 extension we tried to use."""


class BitfieldError(DecodeError):
    """A bitfield has the wrong length for its piece count or spare bits set."""


class DiskFullError(StorageError):
    """The disk holding the download folder is full (ENOSPC, EDQUOT)."""


class StoragePermissionError(StorageError):
    """The download folder or one of its files cannot be written (EACCES, EROFS)."""


class UnsafeStoragePathError(StorageError):
    """A payload path would resolve outside the download folder (e.g. via a symlink)."""


class ResumeDataError(StorageError):
    """Resume data is corrupt or belongs to another torrent."""


class CompactEncodingError(DecodeError):
    """Compact peer or node info (BEP 5/23/32) has an impossible length or address."""


class DhtError(ProtocolError):
    """A DHT node broke the rules of KRPC or of a DHT extension (BEP 5/32/42/43/44/51)."""

    def __init__(self, message: str, code: int = 203, tid: bytes | None = None) -> None:
        super().__init__(message)
        #: The KRPC error code to answer with (201 generic, 203 protocol, 205.. BEP 44).
        self.code = code
        #: Transaction ID of the offending query, when it was readable (to answer it).
        self.tid = tid


class KrpcDecodeError(DhtError):
    """A KRPC datagram is not a well-formed query, response or error."""


class DhtItemError(DhtError):
    """A BEP 44 item is too big, badly signed, or conflicts with the stored one."""


class DhtStateError(DhtError):
    """A saved DHT state file (node ID, routing table) is unreadable; the node starts afresh."""


class StateError(ServentError):
    """The node's state database is unusable or lacks a record the caller named."""


class NodeError(ServentError):
    """A Node operation cannot be done (bad input, duplicate torrent ...)."""


class TorrentNotFoundError(NodeError):
    """No torrent with the given id is known to the node."""


class DaemonError(ServentError):
    """The daemon cannot be reached, or its API answered with an error."""


class TrackerError(ProtocolError):
    """A tracker answered with garbage, a failure reason, or too much data, or cannot be reached."""


class TrackerFailureError(TrackerError):
    """The tracker answered with a ``failure reason`` (HTTP) or an error action (UDP)."""


class PexError(ProtocolError):
    """A ``ut_pex`` message is malformed or arrives too often (BEP 11)."""


class NodeRoutesError(ProtocolError):
    """An ``sv_nodes`` message (servent peers of a swarm, ``docs/relay.md``) is malformed."""


class MetadataExchangeError(ProtocolError):
    """A ``ut_metadata`` message is malformed, or metadata fails its info-hash (BEP 9)."""


class MseError(ProtocolError):
    """The encryption handshake (MSE/PE) failed: bad sync, policy mismatch, unknown torrent."""


class SealedWireError(MseError):
    """The sealed wire of a network torrent failed: wrong key, not a member, bad frame.

    An :class:`MseError` so every dial path that gives up on a failed encryption
    handshake gives up on this one the same way."""


class SealedWireRefused(SealedWireError):
    """The peer holds no current key of a network torrent we hold, or is not a member."""


class LsdError(DecodeError):
    """A local service discovery (BEP 14) announce is malformed."""


class MetadataFetchError(ServentError):
    """A magnet's info dictionary could not be obtained (no peer had it in time)."""


class WebSeedError(ProtocolError):
    """A web seed (BEP 19) answered wrongly: bad status, wrong length, timeout."""


class MetadataSourcesExhaustedError(MetadataFetchError):
    """Every peer a magnet fetch knew was tried and no tracker, DHT or LSD can find more."""


class UtpError(ProtocolError):
    """A malformed uTP packet or a uTP connection that failed (BEP 29)."""


class NetworkError(ServentError):
    """An invite-only network refused something: a bad roster, token or request."""


class RosterError(NetworkError):
    """A network roster that is malformed, badly signed or not newer than the one held."""


class InvitationError(NetworkError):
    """An invitation token that does not parse, or one its admin refused."""
