"""Fuzz the torrent parser: ``python -m fuzz.metainfo --runs N``."""

from __future__ import annotations

import random
import sys
from typing import Any

from fuzz import run
from servent.codec.bencode import decode, encode
from servent.codec.merkle import root_from_piece_layer
from servent.codec.metainfo import parse_torrent
from servent.errors import ServentError

PL = 16384


def _corpus() -> list[bytes]:
    layer = [bytes([i]) * 32 for i in range(3)]
    root = root_from_piece_layer(layer, PL)
    v1 = {"name": "a", "piece length": PL, "pieces": b"x" * 40,
          "files": [{"length": PL, "path": ["d", "f"]}, {"length": 5, "path": ["g"]},
                    {"length": PL - 5, "path": [".pad", str(PL - 5)], "attr": "p"}]}
    v2 = {"name": "a", "piece length": PL, "meta version": 2,
          "file tree": {"big": {"": {"length": 3 * PL - 1, "pieces root": root}},
                        "e": {"": {"length": 0}}}}
    hybrid = {**v2, "pieces": b"y" * 60,
              "files": [{"length": 3 * PL - 1, "path": ["big"]},
                        {"length": 1, "path": [".pad", "1"], "attr": "p"},
                        {"length": 0, "path": ["e"]}]}
    layers = {root: b"".join(layer)}
    return [
        encode({"announce": "http://t/announce", "info": v1, "url-list": ["http://w/"]}),
        encode({"info": v2, "piece layers": layers}),
        encode({"info": hybrid, "piece layers": layers, "comment": "c"}),
        encode({"info": {"name": "s", "piece length": PL, "length": 1, "pieces": b"z" * 20}}),
    ]


CORPUS = _corpus()


ODD_VALUES: list[Any] = [
    0, -1, 1 << 60, b"", b"..", b"/", b"CON", b"\xff", b"p", [], {}, [b".."], {b"": {}},
    {b"": {b"length": 1 << 40}}, {b"length": 5, b"path": [b"a"]}, b"x" * 20, b"y" * 32,
]


def _replace(value: Any, rng: random.Random, depth: int = 0) -> Any:
    if depth > 8 or rng.random() < 0.25:
        return rng.choice(ODD_VALUES)
    if isinstance(value, dict) and value:
        key = rng.choice(sorted(value))
        if rng.random() < 0.1:
            return {k: v for k, v in value.items() if k != key}
        return {**value, key: _replace(value[key], rng, depth + 1)}
    if isinstance(value, list) and value:
        index = rng.randrange(len(value))
        return [*value[:index], _replace(value[index], rng, depth + 1), *value[index + 1 :]]
    return rng.choice(ODD_VALUES)


def structural(seed: bytes, rng: random.Random) -> bytes:
    """Replace or drop one nested value of a decodable torrent."""
    try:
        value = decode(seed)
    except ServentError:
        return seed
    return encode(_replace(value, rng))


def target(data: bytes) -> None:
    meta = parse_torrent(data)
    again = parse_torrent(meta.to_bytes())
    if again.info_bytes != meta.info_bytes:
        raise AssertionError("re-encoded torrent has other info bytes")


if __name__ == "__main__":
    sys.exit(run("metainfo", target, CORPUS, structural=structural))
