"""``servent create``, ``servent info`` and the default demo command, run for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from servent.cli.main import main
from servent.codec.magnet import parse_magnet
from servent.codec.metainfo import parse_torrent


def payload(tmp_path: Path) -> Path:
    root = tmp_path / "share"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"a" * 40000)
    (root / "sub" / "b.bin").write_bytes(b"b")
    (root / "sub" / "empty").write_bytes(b"")
    return root


@pytest.mark.parametrize("flag", ["--v1", "--v2", "--hybrid", None])
def test_create_then_info_json_agree(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     flag: str | None) -> None:
    root = payload(tmp_path)
    out = tmp_path / "share.torrent"
    argv = ["create", str(root), "-o", str(out), "--piece-length", "16K",
            "--tracker", "http://127.0.0.1:6969/announce", "--web-seed", "http://127.0.0.1/ws/",
            "--private", "--comment", "hi"]
    assert main(argv + ([flag] if flag else [])) == 0
    magnet_line = capsys.readouterr().out.strip().splitlines()[-1]
    meta = parse_torrent(out.read_bytes())
    assert magnet_line == meta.magnet()
    assert meta.is_v1 == (flag != "--v2") and meta.is_v2 == (flag != "--v1")

    assert main(["info", str(out), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["name"] == "share"
    assert facts["info_hash_v1"] == (meta.info_hash_v1.hex() if meta.info_hash_v1 else None)
    assert facts["info_hash_v2"] == (meta.info_hash_v2.hex() if meta.info_hash_v2 else None)
    assert facts["total_size"] == 40001
    assert facts["piece_length"] == 16384
    assert facts["files"] == [
        {"path": "share/a.txt", "size": 40000},
        {"path": "share/sub/b.bin", "size": 1},
        {"path": "share/sub/empty", "size": 0},
    ]
    assert facts["trackers"] == ["http://127.0.0.1:6969/announce"]
    assert facts["web_seeds"] == ["http://127.0.0.1/ws/"]
    assert facts["private"] is True
    assert facts["magnet"] == magnet_line


def test_info_text_lists_name_hashes_and_files(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    root = payload(tmp_path)
    out = tmp_path / "t.torrent"
    assert main(["create", str(root), "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    meta = parse_torrent(out.read_bytes())
    assert meta.info_hash_v1 is not None and meta.info_hash_v2 is not None
    for needle in ("share", meta.info_hash_v1.hex(), meta.info_hash_v2.hex(), "sub/b.bin",
                   "magnet:?"):
        assert needle in text


def test_info_of_a_magnet_link(capsys: pytest.CaptureFixture[str]) -> None:
    uri = ("magnet:?xt=urn:btih:" + "ab" * 20 + "&dn=Some%20name"
           "&tr=http%3A%2F%2F127.0.0.1%2Fannounce&x.pe=127.0.0.1:6881")
    assert main(["info", uri, "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["name"] == "Some name"
    assert facts["info_hash_v1"] == "ab" * 20 and facts["info_hash_v2"] is None
    assert facts["trackers"] == ["http://127.0.0.1/announce"]
    assert facts["total_size"] is None and facts["files"] == []
    assert parse_magnet(facts["magnet"]) == parse_magnet(uri)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["info", "magnet:?xt=urn:btih:nothex"], "urn:btih"),
        (["info", "missing.torrent"], "missing.torrent"),
        (["create", "no-such-folder"], "no such file"),
        (["create", ".", "--piece-length", "1000"], "power of two"),
        (["create", ".", "--piece-length", "lots"], "not a size"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    argv: list[str], message: str,
) -> None:
    (tmp_path / "f").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err


def test_garbage_torrent_file_names_the_file(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.torrent"
    bad.write_bytes(b"d4:infod6:lengthi1e4:name2:..12:piece lengthi16384e6:pieces20:" +
                    b"x" * 20 + b"ee")
    assert main(["info", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.torrent" in err and "'..'" in err


def test_create_does_not_overwrite_the_default_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = payload(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["create", str(root)]) == 0
    assert (tmp_path / "share.torrent").is_file()
    assert main(["create", str(root)]) == 1
    assert "exists" in capsys.readouterr().err


def run_create_with_stderr(tmp_path: Path, stderr: int) -> subprocess.CompletedProcess[bytes]:
    root = payload(tmp_path)
    (root / "big.bin").write_bytes(bytes(4 * 1024 * 1024))
    return subprocess.run(
        [sys.executable, "-m", "servent", "create", str(root), "-o", str(tmp_path / "t.torrent")],
        stdout=subprocess.PIPE, stderr=stderr, timeout=120,
    )


def test_create_is_quiet_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    result = run_create_with_stderr(tmp_path, subprocess.PIPE)
    assert result.returncode == 0
    assert result.stderr.decode().splitlines() == [
        line for line in result.stderr.decode().splitlines() if line.startswith("created ")
    ]
    assert b"hashing" not in result.stderr


def test_create_shows_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    import pty

    controller, terminal = pty.openpty()
    try:
        result = run_create_with_stderr(tmp_path, terminal)
        os.close(terminal)
        terminal = -1
        output = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the terminal side is closed and drained
                break
            if not chunk:
                break
            output += chunk
    finally:
        if terminal >= 0:
            os.close(terminal)
        os.close(controller)
    assert result.returncode == 0
    assert b"hashing" in output
    assert result.stdout.decode().startswith("magnet:?")
