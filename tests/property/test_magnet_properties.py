"""Hypothesis: magnet links round-trip; hostile links raise only MagnetError."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from servent.codec.magnet import Magnet, parse_magnet
from servent.errors import MagnetError

REPO = Path(__file__).resolve().parents[2]
text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=30)
hosts = st.sampled_from(["127.0.0.1", "::1", "10.1.2.3", "fe80::1", "peer.example"])


@st.composite
def magnets(draw: st.DrawFn) -> Magnet:
    v1 = draw(st.none() | st.binary(min_size=20, max_size=20))
    v2 = draw(st.binary(min_size=32, max_size=32) if v1 is None else
              st.none() | st.binary(min_size=32, max_size=32))
    return Magnet(
        info_hash_v1=v1,
        info_hash_v2=v2,
        display_name=draw(st.none() | text),
        trackers=tuple(draw(st.lists(text, max_size=3, unique=True))),
        peers=tuple(draw(st.lists(st.tuples(hosts, st.integers(1, 65535)), max_size=3,
                                  unique=True))),
        web_seeds=tuple(draw(st.lists(text, max_size=2, unique=True))),
        select_only=tuple(sorted(draw(st.sets(st.integers(0, 500), max_size=8)))),
    )


@given(magnets())
@settings(max_examples=300)
def test_format_then_parse_is_identity(magnet: Magnet) -> None:
    assert parse_magnet(magnet.to_uri()) == magnet


@given(st.text(max_size=300))
@settings(max_examples=300)
def test_random_text_raises_only_magnet_errors(uri: str) -> None:
    for candidate in (uri, "magnet:?" + uri):
        try:
            parsed = parse_magnet(candidate)
        except MagnetError:
            continue
        assert parsed.info_hash_v1 is not None or parsed.info_hash_v2 is not None


@given(magnets(), st.data())
@settings(max_examples=300)
def test_mutated_links_raise_only_magnet_errors(magnet: Magnet, data: st.DataObject) -> None:
    uri = list(magnet.to_uri())
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(uri) - 1))
        uri[pos:pos + data.draw(st.integers(0, 3))] = data.draw(
            st.text(alphabet="%&=:[]-,.0123456789abcdefxtrnmpsowd?\u00e9", max_size=4))
    try:
        parsed = parse_magnet("".join(uri))
    except MagnetError:
        return
    assert parsed.info_hash_v1 is not None or parsed.info_hash_v2 is not None
    assert parse_magnet(parsed.to_uri()) == parsed


def test_fuzz_harness_runs() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "fuzz.magnet", "--runs", "2000", "--seed", "3"],
                            cwd=REPO, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert "no crash" in result.stdout
