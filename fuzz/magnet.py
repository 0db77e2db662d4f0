"""Fuzz the magnet parser: ``python -m fuzz.magnet --runs N``."""

from __future__ import annotations

import sys

from fuzz import run
from servent.codec.magnet import parse_magnet

H1 = "0123456789abcdef0123456789abcdef01234567"
H2 = "1220" + "ab" * 32
CORPUS = [
    f"magnet:?xt=urn:btih:{H1}".encode(),
    f"magnet:?xt=urn:btih:{H1}&xt=urn:btmh:{H2}&dn=name%20x&tr=http%3A%2F%2Ft%2Fa".encode(),
    f"magnet:?xt=urn:btmh:{H2}&x.pe=127.0.0.1:1&x.pe=[::1]:2&ws=http://w/&so=0,2-4".encode(),
    b"magnet:?xt=urn:btih:AEBAGBAFAYDQQCIKBMGA2DQPCAIREEYU",
]


def target(data: bytes) -> None:
    magnet = parse_magnet(data.decode("utf-8", "replace"))
    if parse_magnet(magnet.to_uri()) != magnet:
        raise AssertionError("formatted magnet parses to something else")


if __name__ == "__main__":
    sys.exit(run("magnet", target, CORPUS))
