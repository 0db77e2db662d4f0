"""The Messages view in a real headless Chromium (Debian package) driven by Playwright.

Two daemons find each other by node ID through a private loopback DHT (a
third daemon is its entry point).  In A's browser: add B as a contact, send
B a message and see it delivered; a message from B shows as an unread count
on B's conversation until it is opened; a broadcast from B shows on the
Everyone channel.  A delivery mark follows the pushed ``message_delivered``
event, also when that event reaches the page before the conversation list
shows the message.  Screenshots go to ``test-artifacts/web-ui/``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from browser_ui import browser_context, shot
from playwright.sync_api import APIResponse, Locator, Page, Route, expect

from daemon_process import Daemon, start_daemon
from polling import poll

SECOND = "acknowledged before the list is drawn"
DHT_FLAGS = ("--dht-enabled", "true", "--dht-restrict-ips", "false")
TIMEOUT_MS = 60_000
WAIT = 60.0


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[tuple[Daemon, Daemon]]:
    started: list[Daemon] = []
    try:
        entry = start_daemon(tmp_path / "entry", *DHT_FLAGS, "--dht-bootstrap", "127.0.0.1:9")
        started.append(entry)
        host, port = entry.ok("GET", "/api/status")["dht_address"]
        for name in ("ann", "bob"):
            started.append(
                start_daemon(
                    tmp_path / name, *DHT_FLAGS, "--dht-bootstrap", f"{host}:{port}", "--name", name
                )
            )
        for daemon in started[1:]:
            daemon.poll(
                "/api/status", lambda s: s["dht_nodes"] >= 1, "a daemon joins the DHT", WAIT
            )
        yield started[1], started[2]
    finally:
        for daemon in started:
            daemon.stop()


@pytest.fixture
def page() -> Iterator[Page]:
    with browser_context(390, 844, expect_ms=TIMEOUT_MS) as context:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        yield page


def test_messages_view_conversations_unread_counts_and_broadcasts(
    daemons: tuple[Daemon, Daemon], page: Page
) -> None:
    ann, bob = daemons
    ann_id = ann.ok("GET", "/api/identity")["id"]
    bob_id = bob.ok("GET", "/api/identity")["id"]

    page.goto(f"{ann.url}/#token={ann.token}")
    page.get_by_test_id("nav-messages").click()
    expect(page.get_by_test_id("own-id")).to_contain_text(ann_id)
    expect(page.get_by_test_id("conversation-title")).to_have_text("Everyone")

    # Add Bob, open his conversation, write to him: the message is delivered.
    page.get_by_test_id("contact-id").fill(bob_id)
    page.get_by_test_id("contact-name").fill("Bob")
    page.get_by_test_id("contact-add").click()
    bob_item = page.locator(f'[data-testid="conversation"][data-key="{bob_id}"]')
    expect(bob_item).to_contain_text("Bob")
    bob_item.click()
    expect(page.get_by_test_id("conversation-title")).to_have_text("Bob")
    page.get_by_test_id("compose-text").fill("Hello Bob, from the browser")
    page.get_by_test_id("compose-send").click()
    mine = page.get_by_test_id("chat-message").filter(has_text="Hello Bob, from the browser")
    expect(mine.get_by_test_id("message-meta")).to_contain_text("delivered ✓")
    inbox = bob.ok("GET", "/api/messages?direction=in")
    assert [(m["from"], m["text"]) for m in inbox] == [(ann_id, "Hello Bob, from the browser")]
    shot(page, "messages-01-delivered")

    # Back on the Everyone channel, Bob's answer shows as an unread count.
    page.locator('[data-testid="conversation"][data-kind="channel"][data-key=""]').click()
    expect(page.get_by_test_id("conversation-title")).to_have_text("Everyone")
    bob.ok("POST", "/api/messages", {"to": ann_id, "text": "Hi Ann!", "wait": WAIT})
    expect(bob_item.get_by_test_id("unread")).to_have_text("1")
    shot(page, "messages-02-unread")
    bob_item.click()
    expect(page.get_by_test_id("chat-message").filter(has_text="Hi Ann!")).to_contain_text("Bob")
    expect(bob_item.get_by_test_id("unread")).to_have_count(0)

    # A broadcast from Bob reaches Ann's Everyone channel (by gossip over their channel).
    bob.poll("/api/messaging", lambda m: m["neighbours"], "a gossip neighbour", WAIT)
    bob.ok("POST", "/api/messages", {"broadcast": True, "text": "Bob says hi to everyone"})
    everyone = page.locator('[data-testid="conversation"][data-kind="channel"][data-key=""]')
    expect(everyone.get_by_test_id("unread")).to_have_text("1")
    everyone.click()
    expect(page.get_by_test_id("message-list")).to_contain_text("Bob says hi to everyone")
    shot(page, "messages-03-broadcast")


@contextmanager
def frozen(daemon: Daemon) -> Iterator[None]:
    """The daemon's process stopped (SIGSTOP): its channels stay open, nothing is answered."""
    os.kill(daemon.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(daemon.process.pid, signal.SIGCONT)


def test_delivery_shows_from_the_pushed_ack_even_when_it_beats_the_conversation_list(
    daemons: tuple[Daemon, Daemon], page: Page
) -> None:
    """Regression: the ack's ``message_delivered`` event reached the page before the
    conversation list (drawn from a snapshot taken before the ack) showed the message;
    the event found nothing to update and the message said "waiting…" for good."""
    ann, bob = daemons
    bob_id = bob.ok("GET", "/api/identity")["id"]
    ann.ok("POST", "/api/contacts", {"id": bob_id, "name": "Bob"})
    poll(lambda: ann.ok("GET", "/api/contacts")[0]["connected"], "a channel to Bob", WAIT)
    page.goto(f"{ann.url}/#token={ann.token}")
    page.get_by_test_id("nav-messages").click()
    expect(page.locator("html[data-events=open]")).to_have_count(1)
    page.locator(f'[data-testid="conversation"][data-key="{bob_id}"]').click()
    expect(page.get_by_test_id("conversation-title")).to_have_text("Bob")

    def sent(text: str) -> Locator:
        page.get_by_test_id("compose-text").fill(text)
        page.get_by_test_id("compose-send").click()
        return page.get_by_test_id("chat-message").filter(has_text=text)

    # The ack comes after the list is drawn: the pushed event alone turns it to delivered.
    with frozen(bob):
        first = sent("acknowledged after the list is drawn")
        expect(first.get_by_test_id("message-meta")).to_contain_text("waiting…")
    expect(first.get_by_test_id("message-meta")).to_contain_text("delivered ✓")

    # The ack comes first: the list is drawn from a snapshot taken while Bob could not
    # answer, handed to the page only once the page has taken the pushed ack in.
    stale: list[APIResponse] = []

    def hold_snapshot(route: Route) -> None:
        if stale:
            route.continue_()
            return
        stale.append(route.fetch())
        (ident,) = [m["id"] for m in stale[0].json() if m["text"] == SECOND]
        os.kill(bob.process.pid, signal.SIGCONT)
        page.wait_for_function(f"document.documentElement.dataset.lastAck === '{ident}'")
        route.fulfill(response=stale[0])

    page.route("**/api/messages?peer=*", hold_snapshot)
    with frozen(bob):
        second = sent(SECOND)
        expect(second).to_have_count(1)
    snapshot = [m["delivered"] for m in stale[0].json() if m["text"] == SECOND]
    assert snapshot == [None]  # the list was drawn from the snapshot taken before the ack
    expect(second.get_by_test_id("message-meta")).to_contain_text("delivered ✓")
    expect(first.get_by_test_id("message-meta")).to_contain_text("delivered ✓")


def test_a_redrawn_conversation_list_keeps_the_keyboard_focus(
    daemons: tuple[Daemon, Daemon], page: Page
) -> None:
    """A message that arrives while a conversation has the focus redraws the list; the
    focus stays on that conversation, so Enter still opens it (CI saw Enter go nowhere)."""
    ann, bob = daemons
    ann_id = ann.ok("GET", "/api/identity")["id"]
    bob_id = bob.ok("GET", "/api/identity")["id"]
    page.goto(f"{ann.url}/ui/messages.html#token={ann.token}")
    expect(page.locator("html[data-events=open]")).to_have_count(1)
    bob.ok("POST", "/api/messages", {"to": ann_id, "text": "first", "wait": WAIT})
    item = page.locator(f'[data-testid="conversation"][data-key="{bob_id}"]')
    expect(item.get_by_test_id("unread")).to_have_text("1")
    item.focus()
    bob.ok("POST", "/api/messages", {"to": ann_id, "text": "second", "wait": WAIT})
    expect(item.get_by_test_id("unread")).to_have_text("2")  # the list was drawn again
    focused = page.evaluate("document.activeElement.dataset.key || null")
    assert focused == bob_id
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("conversation-title")).not_to_have_text("Everyone")
    expect(page.get_by_test_id("message-list")).to_contain_text("second")
