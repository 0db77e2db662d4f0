"""``servent get`` connection flags: bad values are one clear error, nothing runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from servent.cli.main import main
from servent.storage.torrent_creator import create_torrent


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--max-peers-per-ip", "0"], "--max-peers-per-ip"),
        (["--max-connections", "0"], "--max-connections"),
    ],
)
def test_get_rejects_connection_limits_below_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], named: str
) -> None:
    (tmp_path / "payload.bin").write_bytes(b"servent" * 1000)
    torrent = tmp_path / "payload.torrent"
    torrent.write_bytes(create_torrent(tmp_path / "payload.bin").to_bytes())
    code = main(["get", str(torrent), "-o", str(tmp_path / "out"), *flags])
    assert code != 0
    assert named in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
