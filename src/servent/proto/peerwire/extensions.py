"""The BEP 10 extension protocol: a registry of named extensions and the handshake.

Each side picks its own small integer id for every extension it speaks and
announces ``{"m": {name: id}}`` in the extension handshake (extended message
id 0).  A message *to* a peer uses the id the peer announced; a message *from*
a peer uses the id we announced.  The :class:`ExtensionRegistry` holds our
side (shared by all connections of a node); each connection keeps the peer's
map (:class:`ExtensionHandshake`).

An extension such as ``ut_metadata`` registers its name once::

    registry = ExtensionRegistry()
    registry.register("ut_metadata")
    registry.register("ut_pex")

and then receives :class:`~servent.proto.peerwire.events.ExtensionMessage`
events carrying its name and raw payload, and sends with
``PeerConnection.send_extension("ut_metadata", payload)``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from servent.codec.bencode import BValue, Limits, decode, encode
from servent.errors import BencodeError, MalformedMessageError

#: Bounds for a peer's extension handshake dictionary.
HANDSHAKE_LIMITS = Limits(max_length=64 * 1024, max_depth=8, max_values=2_000)
_MAX_NAME = 64
#: Names and keys kept over all the handshakes of one connection (beyond one handshake's).
MAX_MERGED_NAMES = 128
MAX_MERGED_FIELDS = 256


class ExtensionRegistry:
    """Our local extension ids, by name.  Ids are 1..255 (0 is the handshake)."""

    def __init__(self) -> None:
        self._by_name: dict[str, int] = {}
        self._by_id: dict[int, str] = {}

    def register(self, name: str, local_id: int | None = None) -> int:
        """Register extension ``name`` and return its local id (next free id if not given).

        Registering the same name twice returns its existing id.
        """
        if not name or len(name.encode()) > _MAX_NAME:
            raise ValueError(f"bad extension name {name!r}")
        existing = self._by_name.get(name)
        if existing is not None:
            if local_id is not None and local_id != existing:
                raise ValueError(f"{name} already registered with id {existing}")
            return existing
        if local_id is None:
            local_id = next(i for i in range(1, 256) if i not in self._by_id)
        if not 1 <= local_id <= 255 or local_id in self._by_id:
            raise ValueError(f"extension id {local_id} unavailable")
        self._by_name[name] = local_id
        self._by_id[local_id] = name
        return local_id

    def name_of(self, local_id: int) -> str | None:
        """The extension a peer addresses with our ``local_id``, if any."""
        return self._by_id.get(local_id)

    def local_id(self, name: str) -> int | None:
        return self._by_name.get(name)

    @property
    def local_map(self) -> Mapping[str, int]:
        """``name -> local id``, as sent in the ``m`` dictionary."""
        return MappingProxyType(self._by_name)

    def handshake_payload(self, extra: Mapping[str, BValue] | None = None) -> bytes:
        """The bencoded extension handshake: ``m`` plus ``extra`` keys (``v``, ``reqq``,
        ``metadata_size``, ``p``, ``yourip`` ...)."""
        body: dict[str, object] = dict(extra or {})
        body["m"] = dict(self._by_name)
        return encode(body)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ExtensionHandshake:
    """A peer's decoded extension handshake.

    ``extensions`` maps name -> the id the peer wants to receive that
    extension on (0 entries, meaning "disabled", are dropped).  ``fields`` is
    the whole decoded dictionary for extension-specific keys.
    """

    extensions: Mapping[str, int]
    fields: Mapping[bytes, BValue] = field(default_factory=dict)

    @property
    def client(self) -> str | None:
        """The ``v`` client name, if the peer sent one."""
        value = self.fields.get(b"v")
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else None

    @property
    def listen_port(self) -> int | None:
        value = self.fields.get(b"p")
        return value if isinstance(value, int) and 0 < value < 65536 else None

    @property
    def your_ip(self) -> str | None:
        """``yourip``: our address as the peer sees it (4 or 16 bytes), else None."""
        value = self.fields.get(b"yourip")
        if not isinstance(value, bytes) or len(value) not in (4, 16):
            return None
        return str(ipaddress.ip_address(value))

    @property
    def request_queue(self) -> int | None:
        """``reqq``: how many outstanding requests the peer accepts."""
        value = self.fields.get(b"reqq")
        return value if isinstance(value, int) and value > 0 else None

    @property
    def metadata_size(self) -> int | None:
        value = self.fields.get(b"metadata_size")
        return value if isinstance(value, int) and value > 0 else None


def parse_extension_handshake(payload: bytes) -> ExtensionHandshake:
    """Decode a peer's extension handshake; hostile input raises :class:`MalformedMessageError`.

    Unknown keys are kept; entries of ``m`` that are not names mapping to ids
    0..255 are ignored rather than fatal, as real clients differ.
    """
    try:
        value = decode(payload, HANDSHAKE_LIMITS)
    except BencodeError as exc:
        raise MalformedMessageError(f"bad extension handshake: {exc}") from exc
    if not isinstance(value, dict):
        raise MalformedMessageError("extension handshake is not a dictionary")
    raw_map = value.get(b"m", {})
    if not isinstance(raw_map, dict):
        raise MalformedMessageError("extension handshake 'm' is not a dictionary")
    extensions: dict[str, int] = {}
    for key, ext_id in raw_map.items():
        if isinstance(ext_id, int) and 1 <= ext_id <= 255 and len(key) <= _MAX_NAME:
            try:
                extensions[key.decode("utf-8")] = ext_id
            except UnicodeDecodeError:
                continue
    return ExtensionHandshake(MappingProxyType(extensions), MappingProxyType(value))


def merge_extension_handshake(
    previous: ExtensionHandshake, update: ExtensionHandshake
) -> ExtensionHandshake:
    """A repeated handshake over the earlier one (BEP 10): ``m`` entries given again
    replace the old ids (id 0 removes one), other keys given again replace their values.

    Raises :class:`MalformedMessageError` when the merge outgrows the bounds (a peer
    sending new names each time)."""
    extensions = dict(previous.extensions)
    raw_map = update.fields.get(b"m")
    if isinstance(raw_map, dict):
        for key, ext_id in raw_map.items():
            if ext_id == 0:
                extensions.pop(key.decode("utf-8", "replace"), None)
    extensions.update(update.extensions)
    fields = {**previous.fields, **update.fields}
    if len(extensions) > max(MAX_MERGED_NAMES, len(update.extensions)):
        raise MalformedMessageError(f"extension handshakes name {len(extensions)} extensions")
    if len(fields) > max(MAX_MERGED_FIELDS, len(update.fields)):
        raise MalformedMessageError(f"extension handshakes give {len(fields)} keys")
    return ExtensionHandshake(MappingProxyType(extensions), MappingProxyType(fields))
