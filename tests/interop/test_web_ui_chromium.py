"""The web UI in a real headless Chromium (Debian package) driven by Playwright.

Opens the UI of a daemon subprocess on a phone-sized screen, adds a magnet
link, a .torrent file (whose data is already in the download folder, so it
verifies to 100%) and a shared folder, pauses and resumes, changes a file
priority, sets encryption, and removes a transfer.  Screenshots go to ``test-artifacts/web-ui/``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_ui import browser_context, shot, torrent_card
from playwright.sync_api import Page, expect

from daemon_process import Daemon, start_daemon
from servent.storage.torrent_creator import create_torrent

MAGNET = "magnet:?xt=urn:btih:" + "be" * 20 + "&dn=from-the-browser"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    running = start_daemon(tmp_path / "data")
    yield running
    assert running.stop() == 0


@pytest.fixture
def page() -> Iterator[Page]:
    with browser_context(390, 844) as context:
        yield context.new_page()


def test_web_ui_add_pause_resume_priority_share_remove(
    daemon: Daemon, page: Page, tmp_path: Path
) -> None:
    # A payload already sitting in the download folder: adding its torrent verifies it.
    payload = daemon.data_dir / "downloads" / "album"
    payload.mkdir(parents=True)
    (payload / "track1.bin").write_bytes(os.urandom(150_000))
    (payload / "track2.bin").write_bytes(os.urandom(90_000))
    torrent_file = tmp_path / "album.torrent"
    torrent_file.write_bytes(create_torrent(payload).to_bytes())
    shared_folder = tmp_path / "photos"
    shared_folder.mkdir()
    (shared_folder / "a.jpg").write_bytes(os.urandom(50_000))

    page.goto(f"{daemon.url}/#token={daemon.token}")
    expect(page.get_by_test_id("node-status")).to_contain_text("transfers")
    shot(page, "01-empty")

    # Add a magnet link.
    page.get_by_test_id("magnet-input").fill(MAGNET)
    page.get_by_test_id("add-button").click()
    magnet_card = torrent_card(page, "from-the-browser")
    expect(magnet_card).to_be_visible()
    expect(magnet_card.get_by_test_id("torrent-state")).to_have_text("metadata")

    # Add a .torrent file; its data verifies to 100 %.
    page.get_by_test_id("torrent-file").set_input_files(str(torrent_file))
    page.get_by_test_id("add-button").click()
    album = torrent_card(page, "album")
    expect(album).to_be_visible()
    expect(album.get_by_test_id("torrent-state")).to_have_text("seeding")
    expect(album).to_contain_text("100.0%")
    shot(page, "02-added")

    # Pause and resume.
    album.get_by_test_id("pause").click()
    expect(album.get_by_test_id("torrent-state")).to_have_text("paused")
    shot(page, "03-paused")
    album.get_by_test_id("resume").click()
    expect(album.get_by_test_id("torrent-state")).to_have_text("seeding")

    # Change a file priority in the details panel.
    album.get_by_test_id("details").click()
    priorities = album.get_by_test_id("priority")
    expect(priorities).to_have_count(2)
    priorities.nth(1).select_option("0")
    expect(page.get_by_test_id("message")).to_contain_text("set to skip")
    shot(page, "04-priority")
    album_id = album.get_attribute("data-id")
    files = daemon.ok("GET", f"/api/torrents/{album_id}/files")
    assert [f["priority"] for f in files] == [1, 0]

    # Share a folder: it is seeded at 100 % and its magnet link is shown.
    page.get_by_test_id("share-input").fill(str(shared_folder))
    page.get_by_test_id("share-button").click()
    expect(page.get_by_test_id("share-result")).to_contain_text("magnet:?xt=urn:btih:")
    photos = torrent_card(page, "photos")
    expect(photos.get_by_test_id("torrent-state")).to_have_text("seeding")
    expect(page.get_by_test_id("shares")).to_contain_text(str(shared_folder))
    shot(page, "05-shared")

    # Settings: encryption is shown as the node runs it and stored for the next start.
    encryption = page.get_by_test_id("settings-encryption")
    expect(encryption).to_have_value("enabled")
    encryption.select_option("required")
    page.get_by_test_id("settings-save").click()
    expect(page.get_by_test_id("message")).to_contain_text("after a restart")
    page.reload()  # the form shows the saved value, not the one still running
    expect(page.get_by_test_id("settings-encryption")).to_have_value("required")

    # Remove the magnet transfer in the remove dialog (its files kept: it has none).
    magnet_card.get_by_test_id("remove").click()
    expect(page.get_by_test_id("remove-dialog")).to_contain_text("from-the-browser")
    page.get_by_test_id("remove-confirm").click()
    expect(magnet_card).to_have_count(0)
    expect(page.get_by_test_id("remove-dialog")).to_be_hidden()
    expect(page.get_by_test_id("message")).to_contain_text("its files are kept")
    assert {t["name"] for t in daemon.ok("GET", "/api/torrents")} == {"album", "photos"}
    shot(page, "06-removed")


def test_web_ui_without_token_asks_for_it(daemon: Daemon, page: Page) -> None:
    page.goto(daemon.url + "/")
    expect(page.locator("#login")).to_be_visible()
    page.locator("#token-input").fill(daemon.token)
    page.locator("#token-form button").click()
    expect(page.get_by_test_id("node-status")).to_contain_text("transfers")
    shot(page, "07-login")


def test_web_ui_downloads_a_magnet_from_another_daemon(page: Page, tmp_path: Path) -> None:
    """The UI of one daemon fetches a folder another daemon shares (magnet with x.pe):
    progress to 100 %, peers shown, pause and resume mid-way, a file priority changed."""
    folder = tmp_path / "movie"
    folder.mkdir()
    (folder / "film.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    (folder / "subtitles.txt").write_bytes(b"line of text\n" * 2000)
    seeder = start_daemon(tmp_path / "seeder")
    leecher = start_daemon(tmp_path / "leecher")
    try:
        shared = seeder.ok("POST", "/api/shares", {"path": str(folder)})
        seeder.ok("PUT", f"/api/torrents/{shared['id']}/limits", {"upload_rate_limit": 600_000})
        port = seeder.ok("GET", "/api/status")["listen_address"][1]
        magnet = f"{shared['magnet']}&x.pe=127.0.0.1:{port}"

        page.goto(f"{leecher.url}/#token={leecher.token}")
        page.get_by_test_id("magnet-input").fill(magnet)
        page.get_by_test_id("add-button").click()
        movie = torrent_card(page, "movie")
        state = movie.get_by_test_id("torrent-state")
        expect(state).to_have_text("downloading")
        movie.get_by_test_id("details").click()
        peer = movie.get_by_test_id("peer")
        expect(peer.locator("td").nth(0)).to_have_text(f"127.0.0.1:{port}")
        expect(peer.locator("td").nth(1)).to_contain_text("servent")
        # The peer table fits a phone's width: the page never scrolls sideways.
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
        shot(page, "11-downloading")

        movie.get_by_test_id("pause").click()
        expect(state).to_have_text("paused")
        paused = leecher.ok("GET", f"/api/torrents/{shared['id']}")
        assert paused["paused"] is True and 0.0 < paused["progress"] < 1.0
        assert leecher.ok("GET", f"/api/torrents/{shared['id']}/peers") == []
        shot(page, "12-paused")
        movie.get_by_test_id("resume").click()
        expect(state).to_have_text(re.compile("downloading|seeding"))

        priorities = movie.get_by_test_id("priority")
        expect(priorities).to_have_count(2)
        priorities.nth(1).select_option("7")
        expect(page.get_by_test_id("message")).to_contain_text("set to highest")
        files = leecher.ok("GET", f"/api/torrents/{shared['id']}/files")
        assert [f["priority"] for f in files] == [1, 7]

        expect(movie).to_contain_text("100.0%", timeout=60_000)
        expect(state).to_have_text("seeding")
        # The open details panel follows too: every file at 100 %, not the figure
        # from when the panel was opened.
        expect(movie.get_by_test_id("file-progress")).to_have_text(["100%", "100%"])
        shot(page, "13-complete")
        save = leecher.data_dir / "downloads" / "movie"
        assert (save / "film.bin").read_bytes() == (folder / "film.bin").read_bytes()
    finally:
        assert leecher.stop() == 0
        assert seeder.stop() == 0


def test_web_ui_plays_a_video_while_it_downloads(page: Page, tmp_path: Path) -> None:
    """The Play button of a media file puts a stream URL (its own token, not the API
    token) in the page's <video>; Chromium's range request is answered 206 and the
    video's metadata loads from the pieces fetched first."""
    import subprocess

    folder = tmp_path / "trailer"
    folder.mkdir()
    source = "testsrc=duration=4:size=320x240:rate=25,noise=alls=30:allf=t"
    encode = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", source, "-c:v", "libvpx"]
    subprocess.run([*encode, "-b:v", "2M", str(folder / "clip.webm")], check=True, timeout=120)
    (folder / "about.txt").write_bytes(b"a trailer\n" * 100)
    seeder = start_daemon(tmp_path / "seeder")
    viewer = start_daemon(tmp_path / "viewer")
    try:
        shared = seeder.ok("POST", "/api/shares", {"path": str(folder), "with_peer": True})
        seeder.ok("PUT", f"/api/torrents/{shared['id']}/limits", {"upload_rate_limit": 500_000})
        statuses: list[tuple[str, int, str | None]] = []
        page.on(
            "response",
            lambda r: statuses.append((r.url, r.status, r.request.headers.get("range"))),
        )
        page.goto(f"{viewer.url}/#token={viewer.token}")
        page.get_by_test_id("magnet-input").fill(shared["magnet"])
        page.get_by_test_id("add-button").click()
        trailer = torrent_card(page, "trailer")
        trailer.get_by_test_id("details").click()
        play = trailer.get_by_test_id("play")
        expect(play).to_have_count(1)  # the video, not the text file
        play.click()
        video = trailer.get_by_test_id("player")
        expect(video).to_have_attribute("src", re.compile(r"/stream/[A-Za-z0-9_-]{43}/"))
        src = video.get_attribute("src") or ""
        assert viewer.token not in src
        page.wait_for_function(
            "document.querySelector('[data-testid=player]').readyState >= 1", timeout=60_000
        )
        duration = video.evaluate("v => v.duration")
        assert abs(duration - 4.0) < 0.5
        shot(page, "14-playing")
        ranged = [(status, rng) for url, status, rng in statuses if "/stream/" in url]
        assert any(status == 206 and rng for status, rng in ranged), ranged
    finally:
        assert viewer.stop() == 0
        assert seeder.stop() == 0
