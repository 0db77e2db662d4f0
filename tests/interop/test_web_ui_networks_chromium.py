"""The Networks view in a real headless Chromium (Debian package) driven by Playwright.

In Ann's browser: create a network, make an invitation and copy it with the
button (read back from the clipboard); Bob joins with it in his browser; Ann's
member list shows Bob as soon as he joined (the ``network_member_joined``
event); Ann promotes Bob to admin, then revokes him and the network moves
to key epoch 2.  Screenshots go to ``test-artifacts/web-ui/``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from browser_ui import chromium, shot
from playwright.sync_api import Browser, Page, expect

from daemon_process import Daemon, start_daemon

TIMEOUT_MS = 60_000


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[tuple[Daemon, Daemon]]:
    started: list[Daemon] = []
    try:
        for name in ("ann", "bob"):
            started.append(start_daemon(tmp_path / name, "--name", name))
        yield started[0], started[1]
    finally:
        for daemon in started:
            daemon.stop()


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium(expect_ms=TIMEOUT_MS) as launched:
        yield launched


def _page(browser: Browser, daemon: Daemon) -> Page:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=daemon.url)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("dialog", lambda dialog: dialog.accept())
    return page


def test_networks_view_create_invite_copy_join_members_and_revoke(
    daemons: tuple[Daemon, Daemon], browser: Browser
) -> None:
    ann, bob = daemons
    bob_id = bob.ok("GET", "/api/identity")["id"]
    page = _page(browser, ann)
    page.goto(f"{ann.url}/#token={ann.token}")
    page.get_by_test_id("nav-networks").click()

    page.get_by_test_id("create-name").fill("book club")
    page.get_by_test_id("create-network").click()
    expect(page.get_by_test_id("network-title")).to_have_text("book club")
    expect(page.get_by_test_id("network-facts")).to_contain_text("key epoch 1")
    expect(page.get_by_test_id("member")).to_have_count(1)

    page.get_by_test_id("invite-uses").fill("2")
    page.get_by_test_id("make-invite").click()
    invite = page.get_by_test_id("invite-text")
    expect(invite).to_contain_text("snet1")
    page.get_by_test_id("invite-copy").click()
    expect(page.get_by_test_id("message")).to_contain_text("Invitation copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == invite.text_content() and copied.startswith("snet1")
    shot(page, "networks-01-invitation")

    # Bob joins in his own browser with the copied invitation.
    bobs = _page(browser, bob)
    bobs.goto(f"{bob.url}/ui/networks.html#token={bob.token}")
    bobs.get_by_test_id("join-invite").fill(copied)
    bobs.get_by_test_id("join-network").click()
    expect(bobs.get_by_test_id("network-title")).to_have_text("book club")
    expect(bobs.get_by_test_id("network-facts")).to_contain_text("member")
    expect(bobs.get_by_test_id("make-invite")).to_be_hidden()
    shot(bobs, "networks-02-joined")

    # Ann's view shows Bob without a reload; she promotes him, then revokes him.
    bob_row = page.locator(f'[data-testid="member"][data-id="{bob_id}"]')
    expect(bob_row).to_contain_text("bob")
    shot(page, "networks-03-members")
    bob_row.get_by_test_id("promote").click()
    expect(page.get_by_test_id("message")).to_contain_text("is an admin now")
    expect(bob_row).to_contain_text("admin")
    expect(bob_row.get_by_test_id("demote")).to_be_visible()
    members = ann.ok("GET", f"/api/networks/{quote('book club')}/members")
    assert [m["admin"] for m in members if m["id"] == bob_id] == [True]
    bob_row.get_by_test_id("revoke").click()
    expect(page.get_by_test_id("message")).to_contain_text("Revoked")
    expect(bob_row).to_have_count(0)
    expect(page.get_by_test_id("network-facts")).to_contain_text("key epoch 2")
    assert ann.ok("GET", "/api/networks")[0]["epoch"] == 2
    shot(page, "networks-04-revoked")

    # A bad invitation shows its reason.
    bobs.get_by_test_id("join-invite").fill("snet1notatoken")
    bobs.get_by_test_id("join-network").click()
    expect(bobs.get_by_test_id("message")).to_contain_text("invitation")
