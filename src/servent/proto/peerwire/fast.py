"""The canonical allowed-fast set of BEP 6.

Both ends can compute the same set, so peers that offer ``k`` pieces offer
the same ``k``: hash the peer's IPv4 /24 prefix with the info-hash, then
repeatedly SHA-1 the digest and read it as five big-endian 32-bit numbers
modulo the piece count.  BEP 6 has no IPv6 rule; for IPv6 peers we use the
/48 prefix in the same scheme (libtorrent does not send allowed-fast to IPv6
peers, so the choice only has to be stable, not interoperable).
"""

from __future__ import annotations

import hashlib
import ipaddress

#: The ``k`` suggested by BEP 6.
DEFAULT_ALLOWED_FAST_COUNT = 10


def allowed_fast_set(
    ip: str, info_hash: bytes, num_pieces: int, count: int = DEFAULT_ALLOWED_FAST_COUNT
) -> list[int]:
    """The first ``count`` pieces of the allowed-fast set for the peer at ``ip``, in order.

    ``count`` is clamped to ``num_pieces`` (a torrent smaller than ``k`` gives
    all its pieces).
    """
    if num_pieces <= 0:
        return []
    count = min(count, num_pieces)
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if isinstance(address, ipaddress.IPv4Address):
        prefix = (int(address) & 0xFFFFFF00).to_bytes(4, "big")
    else:
        prefix = address.packed[:6] + bytes(10)
    digest = prefix + info_hash
    chosen: list[int] = []
    seen: set[int] = set()
    while len(chosen) < count:
        digest = hashlib.sha1(digest).digest()
        for offset in range(0, 20, 4):
            if len(chosen) >= count:
                break
            index = int.from_bytes(digest[offset : offset + 4], "big") % num_pieces
            if index not in seen:
                seen.add(index)
                chosen.append(index)
    return chosen
