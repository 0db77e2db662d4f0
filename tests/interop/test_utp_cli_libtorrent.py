"""``servent get`` and ``servent seed`` (real processes) speak uTP with libtorrent.

libtorrent runs with TCP off both ways, so only uTP can carry the payload: the
one-shot commands must dial and accept uTP by default, as the daemon does.
Bytes are compared with the originals; libtorrent's own peer flags show uTP.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from reference_clients import (
    LOOPBACK,
    assert_content,
    create_torrent_with_libtorrent,
    libtorrent_peer,
    libtorrent_seeder,
    write_content,
)

from e2e.servent_cli import run_servent, servent

pytestmark = pytest.mark.interop

DEADLINE = 120.0
FILES = {"a.bin": 2_500_000, "sub/b.bin": 700_001}
#: libtorrent's ``peer_info::utp_socket`` flag (bit 17; the bindings do not name it).
LT_UTP_SOCKET = 1 << 17
UTP_ONLY: dict[str, Any] = {
    "enable_outgoing_utp": True,
    "enable_incoming_utp": True,
    "enable_outgoing_tcp": False,
    "enable_incoming_tcp": False,
}


def _lt_flags(handle: Any) -> list[int]:
    return [int(p.flags) for p in handle.get_peer_info()]


@pytest.mark.parametrize("preference", [None, "prefer-utp"])
async def test_get_downloads_from_a_utp_only_libtorrent_seeder(
    tmp_path: Path, preference: str | None
) -> None:
    """Default flags (TCP first, uTP when TCP fails) and ``--utp-preference prefer-utp``."""
    expected = write_content(tmp_path / "seed", FILES)
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", version="hybrid")
    torrent_file = tmp_path / "content.torrent"
    torrent_file.write_bytes(torrent)
    flags = () if preference is None else ("--utp-preference", preference)
    with libtorrent_peer(**UTP_ONLY) as seeder:
        await libtorrent_seeder(seeder, torrent, tmp_path / "seed")
        started = time.monotonic()
        code, out, err = await run_servent(
            "get", torrent_file, "-o", tmp_path / "out", "--peer", f"{LOOPBACK}:{seeder.port}",
            *flags, within=DEADLINE,
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert code == 0, err
    assert len(out) == 1 and "content" in out[0] and "verified" in out[0], out
    assert_content(tmp_path / "out", expected)
    print(f"get over uTP ({preference or 'default'}): {elapsed:.1f} s")


async def test_a_utp_only_libtorrent_leecher_downloads_from_seed(tmp_path: Path) -> None:
    expected = write_content(tmp_path / "seed", FILES)
    torrent = create_torrent_with_libtorrent(tmp_path / "seed" / "content", version="hybrid")
    torrent_file = tmp_path / "seed" / "content.torrent"
    torrent_file.write_bytes(torrent)
    async with servent("seed", torrent_file, "--host", LOOPBACK) as seeder:
        line = await seeder.wait_line(r"^listening on 127\.0\.0\.1:(\d+)$", within=DEADLINE)
        port = int(line.group(1))
        with libtorrent_peer(**UTP_ONLY) as leecher:
            handle = leecher.add_torrent(torrent, tmp_path / "out", seed=False)
            started = time.monotonic()
            handle.connect_peer((LOOPBACK, port), 0, 0)  # default flags: uTP allowed
            await leecher.wait_for(lambda: _lt_flags(handle), "libtorrent to connect", DEADLINE)
            lt_flags = _lt_flags(handle)
            await leecher.wait_complete(handle, DEADLINE)
            elapsed = time.monotonic() - started
    assert lt_flags and all(flags & LT_UTP_SOCKET for flags in lt_flags), lt_flags
    assert_content(tmp_path / "out", expected)
    print(f"seed over uTP to libtorrent: {elapsed:.1f} s")
