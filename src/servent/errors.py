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
