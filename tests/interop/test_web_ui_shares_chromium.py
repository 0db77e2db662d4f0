"""The Synced folders view and the unread count on the nav, in headless Chromium.

Three daemons on a private loopback DHT (the first is only its entry point).
Ann shares a folder from her browser and sees its keys with copy buttons; in
Bob's browser the read-only key joins it into a folder; both lists follow the
version as Ann changes a file, and leaving keeps Bob's folder byte for byte.
Messages from Bob show as a live unread count on the nav of Ann's main view,
which clears as soon as another tab of hers opens the conversation.
Screenshots go to ``test-artifacts/web-ui/``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_ui import browser_context, shot
from playwright.sync_api import BrowserContext, Page, Response, expect

from daemon_process import Daemon, start_daemon
from polling import poll

DHT_FLAGS = ("--dht-enabled", "true", "--dht-restrict-ips", "false")
WAIT = 120.0
TIMEOUT_MS = 120_000
BIG = 2 * 1024 * 1024
SLOW_UPLOAD = 64 * 1024  # bytes/s: BIG takes ~30 s, time to see the peers swap it


def _wait_for(check: Callable[[], bool], what: str, last: Callable[[], object]) -> None:
    try:
        poll(check, what, WAIT)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; state: {last()}") from None


@pytest.fixture(scope="module")
def daemons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, Daemon]]:
    root = tmp_path_factory.mktemp("daemons")
    started: list[Daemon] = []
    try:
        entry = start_daemon(root / "entry", *DHT_FLAGS, "--dht-bootstrap", "127.0.0.1:9")
        started.append(entry)
        host, port = entry.ok("GET", "/api/status")["dht_address"]
        for name in ("ann", "bob"):
            started.append(
                start_daemon(
                    root / name, *DHT_FLAGS, "--dht-bootstrap", f"{host}:{port}", "--name", name
                )
            )
        for daemon in started:
            _wait_for(
                lambda d=daemon: d.ok("GET", "/api/status")["dht_nodes"] >= 2,  # type: ignore[misc]
                "DHT joined",
                lambda: [d.ok("GET", "/api/status")["dht_nodes"] for d in started],
            )
        yield started[1], started[2]
    finally:
        for daemon in started:
            daemon.stop()


@pytest.fixture
def context(daemons: tuple[Daemon, Daemon]) -> Iterator[BrowserContext]:
    # Versions travel by DHT polls: a loaded machine gets a generous deadline, not 5 s.
    with browser_context(1280, 800, expect_ms=TIMEOUT_MS) as browser:
        browser.set_default_timeout(TIMEOUT_MS)
        for daemon in daemons:
            browser.grant_permissions(["clipboard-read", "clipboard-write"], origin=daemon.url)
        script_errors: list[str] = []
        browser.on("weberror", lambda error: script_errors.append(str(error.error)))
        yield browser
        assert script_errors == [], "the page's scripts failed"


def _open(context: BrowserContext, daemon: Daemon, path: str = "/") -> Page:
    page = context.new_page()
    page.goto(f"{daemon.url}{path}#token={daemon.token}")
    return page


def _contents(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.relative_to(folder).parts[0] != ".servent-versions"
    }


def _created(response: Response) -> bool:
    """The answer to the Share button (not one of the list's GETs of the same URL)."""
    return response.url.endswith("/api/sync") and response.request.method == "POST"


def _takes_password(daemon: Daemon) -> bool:
    body = daemon.ok("GET", "/api/openapi.json")["paths"]["/api/sync"]["post"]["requestBody"]
    return "password" in body["content"]["application/json"]["schema"]["properties"]


def test_shares_view_creates_joins_follows_versions_and_leaves(
    daemons: tuple[Daemon, Daemon], context: BrowserContext, tmp_path: Path
) -> None:
    ann, bob = daemons
    owned, followed = tmp_path / "owned", tmp_path / "followed"
    owned.mkdir()
    originals = {"notes.txt": b"first version\n" * 100, "photo.jpg": os.urandom(60_000)}
    for name, data in originals.items():
        (owned / name).write_bytes(data)

    # Ann goes from the main view to the Synced folders view by the nav.
    ann_page = _open(context, ann)
    ann_page.get_by_test_id("nav-shares").click()
    expect(ann_page.get_by_test_id("sync-empty")).to_be_visible()
    unlabelled = ann_page.evaluate(
        """() => [...document.querySelectorAll('input, button, textarea, select')]
             .filter((el) => el.offsetParent !== null)
             .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                             && !el.textContent.trim())
             .map((el) => el.outerHTML)"""
    )
    assert unlabelled == [], "every control has a name a screen reader can say"
    password_fields = ann_page.locator(".password-field")
    expect(password_fields).to_have_count(2)
    for password_field in password_fields.all():
        if _takes_password(ann):
            expect(password_field).to_be_visible()
        else:
            expect(password_field).to_be_hidden()

    # Share the folder: each key the node gives is shown with a copy button.
    ann_page.get_by_label("Folder on the node's computer").fill(str(owned))
    with ann_page.expect_response(_created) as created:
        ann_page.get_by_test_id("sync-create").click()
    keys: dict[str, Any] = created.value.json()
    box = ann_page.get_by_test_id("sync-keys")
    expect(box).to_be_focused()  # a keyboard or screen-reader user lands on the keys
    for field in ("read_write_key", "read_only_key", "encrypted_key"):
        if keys[field] is None:
            expect(box.get_by_test_id(field)).to_have_count(0)
        else:
            expect(box.get_by_test_id(field)).to_have_text(keys[field])
    assert keys["read_write_key"].startswith("srw-") and keys["read_only_key"].startswith("sro-")
    copy = box.get_by_test_id("copy-read_only_key")
    expect(copy).to_have_accessible_name("copy the read-only key")
    copy.click()
    expect(copy).to_have_text("Copied")
    assert ann_page.evaluate("navigator.clipboard.readText()") == keys["read_only_key"]
    ann_row = ann_page.locator(f'[data-testid="sync-share"][data-id="{keys["id"]}"]')
    expect(ann_row.get_by_test_id("sync-role")).to_have_text("owner")
    expect(ann_row.get_by_test_id("sync-version")).to_have_text("1")
    expect(ann_row.get_by_test_id("sync-state")).to_have_text("synced")
    shot(ann_page, "shares-01-keys")

    # Bob joins with the read-only key; his folder gets every byte.
    bob_page = _open(context, bob, "/ui/shares.html")
    bob_page.get_by_label("Share key").fill(keys["read_only_key"])
    bob_page.get_by_label("Into the folder (made if missing)").fill(str(followed))
    bob_page.get_by_test_id("join-button").click()
    expect(bob_page.get_by_test_id("message")).to_contain_text("Joined as read-only")
    bob_row = bob_page.locator(f'[data-testid="sync-share"][data-id="{keys["id"]}"]')
    expect(bob_row.get_by_test_id("sync-role")).to_have_text("read-only")
    expect(bob_row.get_by_test_id("sync-version")).to_have_text("1")
    expect(bob_row.get_by_test_id("sync-state")).to_have_text("synced")
    _wait_for(lambda: _contents(followed) == originals, "Bob has the folder", followed.iterdir)

    # Ann changes a file: both views show version 2 without a reload.
    second = {**originals, "notes.txt": b"second version\n" * 100}
    (owned / "notes.txt").write_bytes(second["notes.txt"])
    expect(ann_row.get_by_test_id("sync-version")).to_have_text("2")
    expect(bob_row.get_by_test_id("sync-version")).to_have_text("2")
    expect(bob_row.get_by_test_id("sync-state")).to_have_text("synced")
    _wait_for(lambda: _contents(followed) == second, "Bob follows", lambda: _contents(followed))
    shot(bob_page, "shares-02-followed")

    # While Bob fetches a bigger version (Ann's uploads held back), each view lists the
    # other node as a peer with the version they swap and how much of it it has.
    ann.ok("PATCH", "/api/settings", {"upload_rate_limit": SLOW_UPLOAD})
    third = {**second, "video.bin": os.urandom(BIG)}
    (owned / "video.bin").write_bytes(third["video.bin"])
    ann_address = ":".join(str(part) for part in ann.ok("GET", "/api/status")["listen_address"])
    expect(bob_row.get_by_test_id("sync-state")).to_contain_text("downloading version 3")
    from_ann = bob_row.get_by_test_id("sync-peer").filter(has_text=ann_address)
    expect(from_ann).to_have_text(f"{ann_address} · version 3, has it")
    expect(ann_row.get_by_test_id("sync-peer").first).to_contain_text("version 3, has ")
    expect(ann_row.get_by_test_id("sync-peers")).to_contain_text("1 peer")
    shot(bob_page, "shares-03-peers")
    ann.ok("PATCH", "/api/settings", {"upload_rate_limit": 0})
    expect(bob_row.get_by_test_id("sync-version")).to_have_text("3")
    _wait_for(lambda: _contents(followed) == third, "Bob has v3", lambda: _contents(followed))

    # Leaving asks first (Cancel focused), then the row goes and the folder stays.
    before = _contents(followed)
    bob_row.get_by_test_id("sync-leave").click()
    dialog = bob_page.get_by_test_id("leave-dialog")
    expect(dialog).to_contain_text("stay exactly as they are")
    expect(dialog.get_by_test_id("leave-cancel")).to_be_focused()
    dialog.get_by_test_id("leave-confirm").click()
    expect(bob_page.get_by_test_id("sync-share")).to_have_count(0)
    expect(bob_page.get_by_test_id("sync-empty")).to_be_visible()
    assert bob.ok("GET", "/api/sync") == []
    assert _contents(followed) == before == third


def test_nav_shows_unread_messages_live_and_clears_when_read(
    daemons: tuple[Daemon, Daemon], context: BrowserContext
) -> None:
    ann, bob = daemons
    ann_id = ann.ok("GET", "/api/identity")["id"]
    bob_id = bob.ok("GET", "/api/identity")["id"]
    main = _open(context, ann)
    expect(main.locator("html[data-events=open]")).to_have_count(1)
    badge = main.get_by_test_id("nav-unread")
    expect(badge).to_be_hidden()
    link = main.get_by_test_id("nav-messages")
    expect(link).to_have_accessible_name("Messages")

    # Each message from Bob raises the count on Ann's main view as it arrives.
    bob.ok("POST", "/api/messages", {"to": ann_id, "text": "one", "wait": WAIT})
    expect(badge).to_have_text("1")
    expect(link).to_have_accessible_name("Messages, 1 unread message")
    bob.ok("POST", "/api/messages", {"to": ann_id, "text": "two", "wait": WAIT})
    expect(badge).to_have_text("2")
    expect(link).to_have_accessible_name("Messages, 2 unread messages")
    shot(main, "unread-01-badge", full_page=False)

    # Another tab opens Bob's conversation with the keyboard: both counts clear at once.
    messages = _open(context, ann, "/ui/messages.html")
    expect(messages.get_by_test_id("nav-unread")).to_have_text("2")
    conversation = messages.locator(f'[data-testid="conversation"][data-key="{bob_id}"]')
    expect(conversation.get_by_test_id("unread")).to_have_text("2")
    conversation.focus()
    messages.keyboard.press("Enter")
    expect(messages.get_by_test_id("message-list")).to_contain_text("two")
    expect(messages.get_by_test_id("nav-unread")).to_be_hidden()
    expect(badge).to_be_hidden()
    expect(link).to_have_accessible_name("Messages")
    assert ann.ok("GET", "/api/messages/unread") == {"direct": {}, "channels": {}}


def test_shares_view_locks_keys_with_a_password_and_joins_an_encrypted_holder(
    daemons: tuple[Daemon, Daemon], context: BrowserContext, tmp_path: Path
) -> None:
    ann, bob = daemons
    owned, stored = tmp_path / "secret-folder", tmp_path / "stored"
    owned.mkdir()
    (owned / "diary-secret.txt").write_bytes(b"dear diary, plaintext-marker\n" * 50)
    ann_page = _open(context, ann, "/ui/shares.html")
    ann_page.get_by_label("Folder on the node's computer").fill(str(owned))
    ann_page.get_by_label("Password (optional)").fill("correct horse")
    with ann_page.expect_response(_created) as created:
        ann_page.get_by_test_id("sync-create").click()
    keys: dict[str, Any] = created.value.json()
    box = ann_page.get_by_test_id("sync-keys")
    for field, prefix in (("read_write_key", "prw-"), ("read_only_key", "pro-")):
        expect(box.get_by_test_id(field)).to_have_text(keys[field])
        assert keys[field].startswith(prefix)
    encrypted = box.get_by_test_id("encrypted_key")
    expect(encrypted).to_have_text(keys["encrypted_key"])
    assert keys["encrypted_key"].startswith("pen-")
    box.get_by_test_id("copy-encrypted_key").click()
    assert ann_page.evaluate("navigator.clipboard.readText()") == keys["encrypted_key"]

    # Bob pastes the locked encrypted key: without the password the node says why.
    bob_page = _open(context, bob, "/ui/shares.html")
    bob_page.get_by_label("Share key").fill(keys["encrypted_key"])
    bob_page.get_by_label("Into the folder (made if missing)").fill(str(stored))
    bob_page.get_by_label("Password (if the share has one)").fill("wrong horse")
    bob_page.get_by_test_id("join-button").click()
    message = bob_page.get_by_test_id("message")
    expect(message).to_contain_text("wrong password")
    expect(message).to_have_class("message error")
    bob_page.get_by_label("Password (if the share has one)").fill("correct horse")
    bob_page.get_by_test_id("join-button").click()
    expect(message).to_contain_text("Joined as encrypted")
    row = bob_page.locator(f'[data-testid="sync-share"][data-id="{keys["id"]}"]')
    expect(row.get_by_test_id("sync-role")).to_have_text("encrypted (keeps a copy it cannot read)")
    expect(row.get_by_test_id("sync-version")).to_have_text("1")
    shot(bob_page, "shares-04-encrypted")
    stored_bytes = b"".join(p.read_bytes() for p in stored.rglob("*") if p.is_file())
    names = [p.name for p in stored.rglob("*")]
    assert stored_bytes and b"plaintext-marker" not in stored_bytes
    assert not any("diary" in name for name in names)
