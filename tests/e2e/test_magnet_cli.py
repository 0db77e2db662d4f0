"""``servent get MAGNET`` as real processes: by ``x.pe``, and by the DHT alone.

The DHT case is three servent processes on loopback: a plain DHT node (the
one bootstrap address), a seeder that joins through it and announces, and a
downloader given nothing but the magnet link (no ``x.pe``, no tracker) and
that one bootstrap address.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest
from servent_cli import run_servent, servent

from interop.reference_clients import write_payload

pytestmark = pytest.mark.e2e

DEADLINE = 60.0


def make_folder(root: Path) -> dict[str, bytes]:
    files = {"track.ogg": 600_007, "cover/front.jpg": 40_000}
    return {
        name: write_payload(root / name, size, seed=n)
        for n, (name, size) in enumerate(files.items(), start=1)
    }


def assert_same(folder: Path, expected: dict[str, bytes]) -> None:
    for name, data in expected.items():
        assert (folder / name).read_bytes() == data, name


def without_peers(magnet: str) -> str:
    """The magnet link with its ``x.pe`` parameters removed."""
    head, _, query = magnet.partition("?")
    kept = [p for p in query.split("&") if not p.lower().startswith("x.pe=")]
    return head + "?" + "&".join(kept)


async def test_get_a_magnet_link_from_its_x_pe_peer_or_a_given_peer(tmp_path: Path) -> None:
    expected = make_folder(tmp_path / "share" / "album")
    async with servent("seed", tmp_path / "share" / "album", "--host", "127.0.0.1") as seeder:
        magnet = (await seeder.wait_line(r"^magnet:\?.*$")).group(0)
        assert "x.pe=" in magnet
        code, out, err = await run_servent("get", magnet, "-o", tmp_path / "down")
        peer = re.search(r"x\.pe=([^&]+)", magnet)
        assert peer is not None
        bare = without_peers(magnet)  # the same magnet, its peer given with --peer instead
        code2, _, err2 = await run_servent(
            "get", bare, "-o", tmp_path / "down2", "--peer", unquote(peer.group(1))
        )
    assert code == 0, err
    assert any("metadata of album verified" in line for line in err), err
    assert len(out) == 1 and "verified" in out[0], out
    assert_same(tmp_path / "down" / "album", expected)
    assert code2 == 0, err2
    assert_same(tmp_path / "down2" / "album", expected)


async def test_get_a_magnet_link_through_the_dht_only(tmp_path: Path) -> None:
    expected = make_folder(tmp_path / "share" / "album")
    relaxed = "--no-ip-restrictions"  # every node shares 127.0.0.1
    async with servent("dht", "node", "--host", "127.0.0.1", "--port", "0", relaxed) as router:
        match = await router.wait_line(r"listening on (127\.0\.0\.1:\d+)")
        bootstrap = match.group(1)
        async with servent(
            "seed", tmp_path / "share" / "album", "--host", "127.0.0.1",
            "--bootstrap", bootstrap, relaxed,
        ) as seeder:  # fmt: skip
            magnet = without_peers((await seeder.wait_line(r"^magnet:\?.*$")).group(0))
            assert "x.pe" not in magnet and "tr=" not in magnet
            code, out, err = await run_servent(
                "get", magnet, "-o", tmp_path / "down", "--bootstrap", bootstrap, relaxed,
                within=DEADLINE,
            )  # fmt: skip
    assert code == 0, err
    assert any(re.search(r"DHT: joined through 1 node", line) for line in err), err
    assert len(out) == 1 and "verified" in out[0], out
    assert_same(tmp_path / "down" / "album", expected)


async def test_get_rejects_a_malformed_magnet_link(tmp_path: Path) -> None:
    code, _, err = await run_servent("get", "magnet:?xt=urn:btih:nothex", "-o", tmp_path)
    assert code != 0
    assert any("not a valid magnet link" in line for line in err), err


async def test_get_a_magnet_whose_only_peer_is_unreachable_fails_with_one_line(
    tmp_path: Path,
) -> None:
    magnet = "magnet:?xt=urn:btih:" + "ab" * 20 + "&x.pe=127.0.0.1:1"
    code, _, err = await run_servent("get", magnet, "-o", tmp_path, within=DEADLINE)
    assert code == 1
    errors = [line for line in err if line.startswith("servent: error:")]
    assert len(errors) == 1 and "no peer gave the metadata" in errors[0], err
    assert "--bootstrap" in errors[0], errors


async def test_get_finds_the_seeder_through_a_servent_tracker_process(tmp_path: Path) -> None:
    expected = make_folder(tmp_path / "share" / "album")
    async with servent("tracker", "--port", "0", "--host", "127.0.0.1") as tracker:
        port = (await tracker.wait_line(r"udp port (\d+)")).group(1)
        async with servent(
            "seed", tmp_path / "share" / "album", "--host", "127.0.0.1",
            "--tracker", f"http://127.0.0.1:{port}/announce",
        ) as seeder:  # fmt: skip
            magnet = without_peers((await seeder.wait_line(r"^magnet:\?.*$")).group(0))
            assert f"tr=http://127.0.0.1:{port}/announce" in magnet
            code, out, err = await run_servent(
                "get", magnet, "-o", tmp_path / "down",
                "--tracker", f"udp://127.0.0.1:{port}/announce", within=DEADLINE,
            )  # fmt: skip
    assert code == 0, err
    assert len(out) == 1 and "verified" in out[0], out
    assert_same(tmp_path / "down" / "album", expected)


async def test_magnet_from_a_seeder_that_requires_encryption(tmp_path: Path) -> None:
    """Metadata and payload both come over MSE/RC4; a plaintext-only getter is refused."""
    expected = make_folder(tmp_path / "share" / "album")
    async with servent(
        "seed", tmp_path / "share" / "album", "--host", "127.0.0.1", "--encryption", "required"
    ) as seeder:
        magnet = (await seeder.wait_line(r"^magnet:\?.*$")).group(0)
        code, out, err = await run_servent(
            "get", magnet, "-o", tmp_path / "down", "--encryption", "required"
        )
        refused, _, refused_err = await run_servent(
            "get", magnet, "-o", tmp_path / "plain", "--encryption", "off",
            "--metadata-timeout", "5",
        )  # fmt: skip
    assert code == 0, err
    assert len(out) == 1 and "verified" in out[0], out
    assert_same(tmp_path / "down" / "album", expected)
    assert refused != 0
    assert len(refused_err) >= 1 and refused_err[-1].startswith("servent: error:"), refused_err
    assert not (tmp_path / "plain" / "album" / "track.ogg").exists()
