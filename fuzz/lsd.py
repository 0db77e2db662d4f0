"""Fuzz the Local Service Discovery announce parser (BEP 14): ``python -m fuzz.lsd --runs N``.

An accepted announce re-encoded must parse to the same port and info-hashes.
"""

from __future__ import annotations

import sys

from fuzz import run
from servent.net.lsd import LsdAnnounce, decode_announce, encode_announce

IH1, IH2 = bytes(range(20)), bytes(range(20, 40))
CORPUS = [
    encode_announce(LsdAnnounce(6881, (IH1,))),
    encode_announce(LsdAnnounce(1, (IH1, IH2), "cookie-1")),
    encode_announce(LsdAnnounce(65535, (IH2,), "c"), ipv6=True),
    b"BT-SEARCH * HTTP/1.1\r\nHost: 239.192.152.143:6771\r\nPort: 7\r\nInfohash: "
    + IH1.hex().encode()
    + b"\r\n\r\n\r\n",
]


def target(data: bytes) -> None:
    announce = decode_announce(data)
    again = decode_announce(encode_announce(announce))
    if (again.port, again.info_hashes) != (announce.port, announce.info_hashes):
        raise AssertionError("LSD announce does not survive a round trip")


if __name__ == "__main__":
    sys.exit(run("lsd", target, CORPUS))
