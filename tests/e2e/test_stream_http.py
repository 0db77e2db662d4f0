"""``servent stream`` end to end: two daemons, a real media file, ffmpeg as the player.

A seeder daemon shares a video made here with ffmpeg (``testsrc``) and uploads
at a few MiB/s; a viewer daemon gets the stream URL from ``servent stream
MAGNET --json``.  ffprobe parses the container and ffmpeg decodes every frame
through the URL while the download runs; a full GET is compared byte for byte
with the file; ranges, 416, a wrong token and a foreign ``Host`` are checked.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon_process import Daemon, start_daemon

RATE = 3 * 1024 * 1024  # the seeder's upload limit, bytes/s
SECONDS = 12  # about 17 MB: the download takes 5-6 s, the probe needs two ends of it
RUN = 120.0
_ENTRIES = "format=duration:stream=codec_name"


def make_video(path: Path, seconds: int = SECONDS) -> None:
    """A real MPEG-4 video with the index (moov) at the end, as cameras write it."""
    source = f"testsrc=duration={seconds}:size=640x360:rate=25,noise=alls=30:allf=t"
    subprocess.run(
        # about 1.4 MB/s: the seeder sends about twice that
        [
            *("ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", source),
            *("-c:v", "mpeg4", "-q:v", "3"),
            str(path),
        ],
        check=True,
        timeout=RUN,
    )


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[tuple[Daemon, Daemon]]:
    seeder = start_daemon(tmp_path / "seeder-data")
    try:
        viewer = start_daemon(tmp_path / "viewer-data")
    except BaseException:
        seeder.stop()
        raise
    yield seeder, viewer
    assert viewer.stop() == 0
    assert seeder.stop() == 0


def servent(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "servent", *args, "--data-dir", str(daemon.data_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=RUN)


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=RUN) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_a_video_plays_through_the_stream_url_while_it_downloads(
    tmp_path: Path, daemons: tuple[Daemon, Daemon]
) -> None:
    assert shutil.which("ffprobe") is not None, "scripts/test installs ffmpeg"
    seeder, viewer = daemons
    folder = tmp_path / "show"
    folder.mkdir()
    make_video(folder / "movie.mp4")
    (folder / "readme.txt").write_text("not the file to play\n" * 4000)
    original = (folder / "movie.mp4").read_bytes()
    shared = seeder.ok("POST", "/api/shares", {"path": str(folder), "with_peer": True})
    seeder.ok("PUT", f"/api/torrents/{shared['id']}/limits", {"upload_rate_limit": RATE})

    added = servent(viewer, "stream", shared["magnet"], "--json")
    assert added.returncode == 0, added.stderr
    answer = json.loads(added.stdout)
    url = answer["url"]
    assert answer["name"] == "movie.mp4"
    assert url.startswith(viewer.url + "/stream/") and viewer.token not in url

    # A real demuxer reads the container (header first, index at the end) over ranges.
    probe = subprocess.run(
        [*("ffprobe", "-v", "error", "-of", "json"), "-show_entries", _ENTRIES, url],
        capture_output=True,
        text=True,
        timeout=RUN,
    )
    assert probe.returncode == 0, probe.stderr
    parsed = json.loads(probe.stdout)
    assert abs(float(parsed["format"]["duration"]) - SECONDS) < 0.5
    assert parsed["streams"][0]["codec_name"] == "mpeg4"
    # The container's head and tail came first: the probe did not wait for the download.
    assert viewer.ok("GET", f"/api/torrents/{shared['id']}")["progress"] < 1.0

    # A real decoder plays every frame through the URL.
    decode = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", url, "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=RUN,
    )
    assert decode.returncode == 0 and decode.stderr == "", decode.stderr

    status, headers, body = get(url)
    assert status == 200 and body == original
    assert headers["Accept-Ranges"] == "bytes" and headers["Content-Type"] == "video/mp4"

    size = len(original)
    middle = size // 2
    status, headers, body = get(url, {"Range": f"bytes={middle}-{middle + 99}"})
    assert status == 206 and body == original[middle : middle + 100]
    assert headers["Content-Range"] == f"bytes {middle}-{middle + 99}/{size}"
    assert headers["Content-Length"] == "100"
    status, headers, body = get(url, {"Range": "bytes=-10"})
    assert status == 206 and body == original[-10:]
    status, headers, _ = get(url, {"Range": f"bytes={size}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{size}"
    head = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(head, timeout=RUN) as response:
        assert response.status == 200 and response.read() == b""
        assert response.headers["Content-Length"] == str(size)


def test_stream_urls_need_their_own_token_and_this_host(
    tmp_path: Path, daemons: tuple[Daemon, Daemon]
) -> None:
    seeder, _ = daemons
    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / "a.webm").write_bytes(b"A" * 50_000)
    (folder / "b.webm").write_bytes(b"B" * 40_000)
    shared = seeder.ok("POST", "/api/shares", {"path": str(folder)})
    files = {f["path"]: f["index"] for f in seeder.ok("GET", f"/api/torrents/{shared['id']}/files")}
    index_a, index_b = files["clip/a.webm"], files["clip/b.webm"]  # as the files list numbers them
    first = seeder.ok("POST", f"/api/torrents/{shared['id']}/stream", {"file": index_a})
    second = seeder.ok("POST", f"/api/torrents/{shared['id']}/stream", {"file": index_b})
    assert first["name"] == "a.webm" and first["content_type"] == "video/webm"
    assert get(first["url"])[2] == b"A" * 50_000
    token_a = first["path"].split("/")[2]
    swapped = second["path"].replace(second["path"].split("/")[2], token_a)
    assert get(seeder.url + swapped)[0] == 403  # a's token does not open b
    assert get(seeder.url + first["path"].replace(token_a, "x" * 43))[0] == 403
    assert get(first["url"], {"Host": "evil.example"})[0] == 403  # DNS rebinding guard
    _, tid, index, name = first["path"].split("/")[2:]
    for bad in (f"{token_a}/{tid.upper()}/{index}/{name}", f"{token_a}/{tid}/x/{name}"):
        assert get(f"{seeder.url}/stream/{bad}")[0] == 404
    assert get(f"{seeder.url}/stream/{token_a}/{tid}/{'9' * 30}/{name}")[0] == 404
    # ``--player`` runs the player with the URL appended.
    player = f"{sys.executable} -c 'import sys; print(\"playing\", sys.argv[1])'"
    played = servent(
        seeder, "stream", shared["id"][:12], "--file", str(index_b), "--player", player
    )
    assert played.returncode == 0, played.stderr
    assert played.stdout.splitlines() == [second["url"], f"playing {second['url']}"]
