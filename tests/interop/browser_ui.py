"""Headless Chromium (Debian package) for the web UI tests, driven by Playwright.

One place for the browser's flags, the screenshot folder and the locators the
web UI tests share, so every test opens the browser the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web-ui"
TIMEOUT_MS = 15_000
#: How long an ``expect`` retries.  Playwright's own 5 s covers the page, not the daemon
#: behind it (hashing, dialling, a search round) on a loaded two-core machine.
EXPECT_MS = 30_000


@contextmanager
def chromium(expect_ms: int = EXPECT_MS) -> Iterator[Browser]:
    """A fresh headless browser (for tests that open several contexts in it); ``expect``
    assertions made while it is open retry for ``expect_ms``."""
    expect.set_options(timeout=expect_ms)  # a page's set_default_timeout does not reach expect
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def browser_context(
    width: int, height: int, expect_ms: int = EXPECT_MS, **options: Any
) -> Iterator[BrowserContext]:
    """A fresh browser and context with a ``width`` x ``height`` viewport."""
    with chromium(expect_ms) as browser:
        context = browser.new_context(viewport={"width": width, "height": height}, **options)
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)


def torrent_card(page: Page, name: str) -> Locator:
    return page.locator(f'[data-testid="torrent"][data-name="{name}"]')
