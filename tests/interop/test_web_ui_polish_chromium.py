"""What a new user trips over in the web UI, checked in headless Chromium at 1280x800.

One test per item of issue 12: a wrong token is reported and asked for again;
every table has headers; magnet links have a working copy button (Clipboard API
and its fallback); the empty shared-folders panel explains how to share; counts
agree with their nouns; no control is cut off; an errored torrent says why; the
remove dialog shows the node's answer when files were kept; adding a torrent
twice says it is already there.  Screenshots go to
``test-artifacts/web-ui/``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from browser_ui import browser_context, shot, torrent_card
from playwright.sync_api import BrowserContext, Page, expect

from daemon_process import Daemon, start_daemon
from polling import poll
from servent.storage.torrent_creator import create_torrent

WIDTH, HEIGHT = 1280, 800
HANDSHAKE_TIMEOUT = 20.0


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    running = start_daemon(tmp_path / "data")
    yield running
    assert running.stop() == 0


@pytest.fixture
def context(daemon: Daemon) -> Iterator[BrowserContext]:
    with browser_context(WIDTH, HEIGHT) as browser:
        browser.grant_permissions(["clipboard-read", "clipboard-write"], origin=daemon.url)
        script_errors: list[str] = []
        browser.on("weberror", lambda error: script_errors.append(str(error.error)))
        yield browser
        assert script_errors == [], "the page's scripts failed"


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def _open(page: Page, daemon: Daemon) -> None:
    page.goto(f"{daemon.url}/#token={daemon.token}")
    expect(page.get_by_test_id("node-status")).to_contain_text("DHT off")


def _downloaded(daemon: Daemon, tmp_path: Path, name: str, sizes: list[int]) -> str:
    """A payload already in the download folder, added by .torrent: it seeds at once."""
    payload = daemon.data_dir / "downloads" / name
    payload.mkdir(parents=True)
    for number, size in enumerate(sizes):
        (payload / f"part{number}.bin").write_bytes(os.urandom(size))
    torrent = tmp_path / f"{name}.torrent"
    torrent.write_bytes(create_torrent(payload).to_bytes())
    added = daemon.ok("POST", "/api/torrents", {"path": str(torrent)})
    return str(added["id"])


def _folder(tmp_path: Path, name: str) -> dict[str, bytes]:
    """A user's folder with random files; returns its content to compare later."""
    folder = tmp_path / name
    folder.mkdir()
    content = {"a.jpg": os.urandom(40_000), "notes.txt": b"keep me\n" * 500}
    for file_name, data in content.items():
        (folder / file_name).write_bytes(data)
    return content


def _handshake_peer(daemon: Daemon, torrent_id: str, source: str) -> socket.socket:
    """A plain BitTorrent peer from ``source`` (a loopback address) that completes the
    handshake for ``torrent_id`` and stays connected."""
    host, port = daemon.ok("GET", "/api/status")["listen_address"]
    peer = socket.create_connection(
        (host, port), timeout=HANDSHAKE_TIMEOUT, source_address=(source, 0)
    )
    peer_id = b"-TS0001-" + os.urandom(6).hex().encode()[:12]
    peer.sendall(b"\x13BitTorrent protocol" + bytes(8) + bytes.fromhex(torrent_id) + peer_id)
    answer = b""
    while len(answer) < 68:
        chunk = peer.recv(68 - len(answer))
        assert chunk, "the node closed the connection during the handshake"
        answer += chunk
    assert answer[28:48] == bytes.fromhex(torrent_id)
    return peer


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    poll(condition, "condition", timeout, every=0.05)


def test_wrong_token_is_reported_and_asked_for_again(daemon: Daemon, page: Page) -> None:
    page.goto(f"{daemon.url}/#token=not-the-token")
    login = page.locator("#login")
    expect(login).to_be_visible()
    expect(page.get_by_test_id("login-error")).to_contain_text("did not accept that token")
    expect(page.locator("#app")).to_be_hidden()
    assert page.evaluate("localStorage.getItem('servent-token')") is None
    shot(page, "polish-01-wrong-token", full_page=False)

    # A second wrong try is refused on the spot, the form stays.
    page.get_by_test_id("token-input").fill("still-wrong")
    page.get_by_test_id("token-submit").click()
    expect(page.get_by_test_id("login-error")).to_contain_text("did not accept that token")
    expect(page.get_by_test_id("token-input")).to_be_focused()
    expect(page.locator("#app")).to_be_hidden()

    page.get_by_test_id("token-input").fill(daemon.token)
    page.get_by_test_id("token-submit").click()
    expect(page.get_by_test_id("node-status")).to_contain_text("0 transfers")
    expect(login).to_be_hidden()
    expect(page.get_by_test_id("login-error")).to_be_hidden()


def test_every_table_has_headers(daemon: Daemon, page: Page, tmp_path: Path) -> None:
    album = _downloaded(daemon, tmp_path, "album", [70_000, 30_000])
    _folder(tmp_path, "photos")
    daemon.ok("POST", "/api/shares", {"path": str(tmp_path / "photos")})
    with _handshake_peer(daemon, album, "127.0.0.2"):
        _open(page, daemon)
        card = torrent_card(page, "album")
        expect(card.get_by_test_id("peer-count")).to_have_text("1 peer")
        card.get_by_test_id("details").click()
        expect(card.get_by_test_id("peer")).to_have_count(1)
        expect(card.get_by_test_id("file-progress")).to_have_count(2)
        expect(page.get_by_test_id("share")).to_have_count(1)
        tables = page.evaluate(
            """() => [...document.querySelectorAll('table')]
                 .filter((t) => t.offsetParent !== null)
                 .map((t) => ({
                   headers: [...t.querySelectorAll('thead th')]
                     .filter((th) => th.offsetParent !== null).map((th) => th.textContent),
                   scopes: [...t.querySelectorAll('thead th')].map((th) => th.scope),
                   widths: [...t.tBodies[0].rows].map((row) => row.cells.length),
                 }))"""
        )
        shot(page, "polish-02-tables")
    assert [t["headers"] for t in tables] == [
        ["File", "Size", "Done", "Priority", "Play"],
        ["Address", "Client", "Has", "Down", "Up", "Flags"],
        ["Folder", "Shared since", "Magnet link"],
    ]
    for table in tables:
        assert set(table["scopes"]) == {"col"}
        assert table["widths"] and all(w == len(table["headers"]) for w in table["widths"])


def test_copy_buttons_put_the_magnet_on_the_clipboard(
    daemon: Daemon, context: BrowserContext, page: Page, tmp_path: Path
) -> None:
    _folder(tmp_path, "photos")
    _open(page, daemon)
    page.get_by_test_id("share-input").fill(str(tmp_path / "photos"))
    page.get_by_test_id("share-button").click()
    result = page.get_by_test_id("share-result")
    expect(result).to_contain_text("magnet:?xt=urn:btih:")
    (share,) = daemon.ok("GET", "/api/shares")
    magnet = daemon.ok("GET", f"/api/torrents/{share['id']}")["magnet"]

    # The Clipboard API: the button says it worked and the clipboard holds the link.
    button = result.get_by_test_id("copy-magnet")
    button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == magnet
    shot(page, "polish-03-copied", full_page=False)
    expect(button).to_have_text("Copy", timeout=5_000)  # the feedback goes away again

    # The copy button beside the magnet in a transfer's details.
    page.evaluate("navigator.clipboard.writeText('')")
    card = torrent_card(page, "photos")
    card.get_by_test_id("details").click()
    card.get_by_test_id("copy-magnet").click()
    expect(card.get_by_test_id("copy-magnet")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == magnet

    # The one in the shared-folders table.
    page.evaluate("navigator.clipboard.writeText('')")
    in_table = page.get_by_test_id("share").get_by_test_id("copy-magnet")
    in_table.click()
    expect(in_table).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == magnet

    # Without the Clipboard API (plain http from another machine) the fallback copies.
    page.evaluate("navigator.clipboard.writeText('')")
    without_api = context.new_page()
    without_api.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'clipboard', {get: () => undefined})"
    )
    _open(without_api, daemon)
    assert without_api.evaluate("navigator.clipboard === undefined")
    fallback = without_api.get_by_test_id("share").get_by_test_id("copy-magnet")
    fallback.click()
    expect(fallback).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == magnet


def test_empty_shared_folders_panel_explains_how_to_share(
    daemon: Daemon, page: Page, tmp_path: Path
) -> None:
    _folder(tmp_path, "photos")
    _open(page, daemon)
    empty = page.get_by_test_id("shares-empty")
    expect(empty).to_be_visible()
    expect(empty).to_contain_text("Nothing is shared yet")
    expect(empty.locator("code")).to_have_text("servent share FOLDER")
    expect(page.get_by_test_id("shares")).to_be_hidden()
    shot(page, "polish-04-no-shares")

    page.get_by_test_id("share-start").click()
    expect(page.get_by_test_id("share-input")).to_be_focused()
    expect(page.get_by_test_id("message")).to_contain_text("Type the path of a folder")
    page.get_by_test_id("share-input").fill(str(tmp_path / "photos"))
    page.get_by_test_id("share-button").click()
    expect(empty).to_be_hidden()
    expect(page.get_by_test_id("share")).to_have_count(1)
    expect(page.get_by_test_id("share").locator("td").first).to_have_text(str(tmp_path / "photos"))


def test_counts_agree_with_their_nouns(daemon: Daemon, page: Page, tmp_path: Path) -> None:
    single = _downloaded(daemon, tmp_path, "single", [50_000])
    _open(page, daemon)
    status = page.get_by_test_id("node-status")
    expect(status).to_contain_text("1 transfer ·")
    card = torrent_card(page, "single")
    expect(card.get_by_test_id("peer-count")).to_have_text("0 peers")
    card.get_by_test_id("details").click()
    expect(card.get_by_test_id("file-count")).to_have_text("1 file")
    expect(card.get_by_test_id("peers")).to_contain_text("No peers connected.")

    with ExitStack() as peers:
        peers.enter_context(_handshake_peer(daemon, single, "127.0.0.2"))
        expect(card.get_by_test_id("peer-count")).to_have_text("1 peer")
        expect(card.get_by_test_id("peers").locator("caption")).to_have_text("1 peer connected")
        peers.enter_context(_handshake_peer(daemon, single, "127.0.0.3"))
        expect(card.get_by_test_id("peer-count")).to_have_text("2 peers")
        expect(card.get_by_test_id("peers").locator("caption")).to_have_text("2 peers connected")
        shot(page, "polish-05-plurals")

    _downloaded(daemon, tmp_path, "double", [20_000, 10_000])
    expect(status).to_contain_text("2 transfers ·")
    double = torrent_card(page, "double")
    double.get_by_test_id("details").click()
    expect(double.get_by_test_id("file-count")).to_have_text("2 files")
    _folder(tmp_path, "photos")
    daemon.ok("POST", "/api/shares", {"path": str(tmp_path / "photos")})
    expect(page.locator("#shares caption")).to_have_text("1 shared folder")


CONTROL_FIT = """() => {
  const visible = (el) => el.offsetParent !== null || el.tagName === 'DIALOG';
  const ruler = document.createElement('span');
  ruler.style.cssText = 'position:absolute;visibility:hidden;white-space:nowrap';
  document.body.appendChild(ruler);
  const problems = [];
  const controls = document.querySelectorAll(
    'button, input, select, label, th, [data-testid=node-status], dialog');
  for (const el of controls) {
    if (!visible(el)) continue;
    const box = el.getBoundingClientRect();
    const label = el.dataset.testid || el.name || el.textContent.trim().slice(0, 30);
    const name = `${el.tagName} ${label}`;
    if (box.width === 0 || box.height === 0) continue;
    if (box.left < 0 || box.right > innerWidth) problems.push(`${name}: outside 0..${innerWidth}`);
    if (el.scrollWidth > el.clientWidth + 1 && el.tagName !== 'DIALOG')
      problems.push(`${name}: text wider than the control`);
    if (el.tagName === 'SELECT') {
      const style = getComputedStyle(el);
      ruler.style.font = style.font;
      ruler.textContent = el.selectedOptions[0].textContent;
      const padding = parseFloat(style.paddingLeft) + parseFloat(style.paddingRight);
      const room = el.clientWidth - padding - 16;  // 16 px: the menu's arrow
      if (ruler.offsetWidth > room) problems.push(`${name}: option text cut`);
    }
  }
  ruler.remove();
  if (document.documentElement.scrollWidth > innerWidth) problems.push('page scrolls sideways');
  return problems;
}"""


def test_no_control_is_cut_off_at_1280x800(daemon: Daemon, page: Page, tmp_path: Path) -> None:
    _downloaded(daemon, tmp_path, "a-long-album-name-" + "x" * 60, [30_000, 20_000])
    _folder(tmp_path, "photos")
    daemon.ok("POST", "/api/shares", {"path": str(tmp_path / "photos")})
    _open(page, daemon)
    for card in page.get_by_test_id("torrent").all():
        card.get_by_test_id("details").click()
    expect(page.get_by_test_id("file-progress")).to_have_count(4)
    # Every encryption choice fits its menu, not only the one selected now.
    for choice in ("off", "enabled", "required"):
        page.get_by_test_id("settings-encryption").select_option(choice)
        assert page.evaluate(CONTROL_FIT) == [], choice
    shot(page, "polish-06-1280x800")
    torrent_card(page, "photos").get_by_test_id("remove").click()
    dialog = page.get_by_test_id("remove-dialog")
    expect(dialog).to_be_visible()
    expect(page.get_by_test_id("remove-title")).to_have_text('Remove "photos"?')
    box = dialog.bounding_box()
    assert box is not None
    assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTH
    assert box["y"] >= 0 and box["y"] + box["height"] <= HEIGHT
    assert page.evaluate(CONTROL_FIT) == []
    shot(page, "polish-07-remove-dialog", full_page=False)


def test_errored_torrent_shows_its_reason(daemon: Daemon, page: Page, tmp_path: Path) -> None:
    healthy = _downloaded(daemon, tmp_path, "healthy", [10_000])
    # A download folder that is a regular file: the torrent cannot start.
    broken_payload = tmp_path / "broken"
    broken_payload.mkdir()
    (broken_payload / "data.bin").write_bytes(os.urandom(10_000))
    torrent = tmp_path / "broken.torrent"
    torrent.write_bytes(create_torrent(broken_payload).to_bytes())
    not_a_folder = tmp_path / "not-a-folder"
    not_a_folder.write_text("a file, not a folder")
    broken = daemon.ok(
        "POST", "/api/torrents", {"path": str(torrent), "save_path": str(not_a_folder)}
    )
    _wait_for(lambda: daemon.ok("GET", f"/api/torrents/{broken['id']}")["state"] == "error")
    reason = daemon.ok("GET", f"/api/torrents/{broken['id']}")["error"]
    assert reason

    _open(page, daemon)
    card = torrent_card(page, "broken")
    expect(card.get_by_test_id("torrent-state")).to_have_text("error")
    expect(card.get_by_test_id("torrent-error")).to_have_text(f"Stopped: {reason}")
    expect(torrent_card(page, "healthy").get_by_test_id("torrent-error")).to_be_hidden()
    shot(page, "polish-08-error")

    # A snapshot from a node that sends no "error" key at all renders without one,
    # and an error state without a reason still says that it stopped.
    snapshot = daemon.ok("GET", f"/api/torrents/{healthy}")
    del snapshot["error"]
    assert page.evaluate(
        "(t) => { const el = card(t); return el.querySelector('.error-reason').hidden; }", snapshot
    )
    assert (
        page.evaluate(
            "(t) => card(t).querySelector('.error-reason').textContent",
            {**snapshot, "state": "error"},
        )
        == "Stopped by an error (the node gave no reason)."
    )


def _download_from_another_node(daemon: Daemon, tmp_path: Path, name: str) -> Path:
    """A folder that ``daemon`` really downloads from a second daemon sharing it;
    returns where ``daemon`` saved it."""
    source = tmp_path / "elsewhere"
    source.mkdir()
    _folder(source, name)
    seeder = start_daemon(tmp_path / "seeder")
    try:
        shared = seeder.ok("POST", "/api/shares", {"path": str(source / name)})
        port = seeder.ok("GET", "/api/status")["listen_address"][1]
        daemon.ok("POST", "/api/torrents", {"magnet": f"{shared['magnet']}&x.pe=127.0.0.1:{port}"})
        _wait_for(lambda: daemon.ok("GET", f"/api/torrents/{shared['id']}")["progress"] == 1.0, 60)
    finally:
        assert seeder.stop() == 0
    return daemon.data_dir / "downloads" / name


def test_remove_dialog_says_when_files_were_kept(
    daemon: Daemon, page: Page, tmp_path: Path
) -> None:
    content = _folder(tmp_path, "photos")
    daemon.ok("POST", "/api/shares", {"path": str(tmp_path / "photos")})
    downloaded = _download_from_another_node(daemon, tmp_path, "album")
    assert sorted(p.name for p in downloaded.iterdir()) == ["a.jpg", "notes.txt"]
    _open(page, daemon)
    dialog = page.get_by_test_id("remove-dialog")

    # A shared folder is the user's own: asking to delete it removes servent's record only.
    torrent_card(page, "photos").get_by_test_id("remove").click()
    expect(page.get_by_test_id("remove-title")).to_have_text('Remove "photos"?')
    page.get_by_test_id("remove-delete-data").check()
    page.get_by_test_id("remove-confirm").click()
    answer = page.get_by_test_id("remove-answer")
    expect(answer).to_contain_text('Removed "photos" from servent but kept its files: ')
    expect(torrent_card(page, "photos")).to_have_count(0)
    expect(page.get_by_test_id("remove-title")).to_have_text('"photos" removed')
    expect(page.get_by_test_id("remove-confirm")).to_be_hidden()
    shot(page, "polish-09-files-kept", full_page=False)
    reason = answer.text_content()
    assert reason is not None and not reason.endswith("the node kept them.")  # the API's reason
    page.get_by_test_id("remove-cancel").click()
    expect(dialog).to_be_hidden()
    for file_name, data in content.items():
        assert (tmp_path / "photos" / file_name).read_bytes() == data

    # What servent downloaded itself does go, and the dialog simply closes.
    torrent_card(page, "album").get_by_test_id("remove").click()
    expect(page.get_by_test_id("remove-delete-data")).not_to_be_checked()
    expect(page.get_by_test_id("remove-answer")).to_be_hidden()
    page.get_by_test_id("remove-delete-data").check()
    page.get_by_test_id("remove-confirm").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_test_id("message")).to_contain_text('Removed "album" and deleted')
    _wait_for(lambda: not (downloaded / "a.jpg").exists())
    assert not (downloaded / "notes.txt").exists()


def test_adding_a_torrent_twice_says_it_is_already_there(
    daemon: Daemon, page: Page, tmp_path: Path
) -> None:
    payload = daemon.data_dir / "downloads" / "album"
    payload.mkdir(parents=True)
    (payload / "song.bin").write_bytes(os.urandom(20_000))
    torrent = tmp_path / "album.torrent"
    torrent.write_bytes(create_torrent(payload).to_bytes())
    _open(page, daemon)
    message = page.get_by_test_id("message")
    for expected in ("Added album.", "album is already in the list; nothing added."):
        page.get_by_test_id("torrent-file").set_input_files(str(torrent))
        page.get_by_test_id("add-button").click()
        expect(message).to_have_text(expected)
    expect(page.get_by_test_id("torrent")).to_have_count(1)
