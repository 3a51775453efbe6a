"""A small headless-Chromium harness for tests of HTML pages (the results dashboard, the
monitoring page). Drives the system's Chromium (Debian's /usr/bin/chromium, or
$JETSTREAM_CHROMIUM) with playwright; playwright never downloads a browser here.

    from tests.support.browser import browser_page

    with browser_page(path.as_uri()) as page:        # skips the test if no Chromium
        assert page.count("svg path.series-line") > 0
        page.select("#f-period", "weekly")
        page.screenshot(tmp_path / "weekly.png")
    assert not page.problems                          # console errors, page errors, requests

`problems` lists console messages of level error, uncaught exceptions and every network
request that went anywhere but the page's own file (a self-contained page makes none).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DEFAULT_CHROMIUM = "/usr/bin/chromium"


def chromium_path() -> str | None:
    """The Chromium executable to drive, or None when there is none on this machine."""
    candidate = os.environ.get("JETSTREAM_CHROMIUM") or DEFAULT_CHROMIUM
    if Path(candidate).is_file() and os.access(candidate, os.X_OK):
        return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserPage:
    """A loaded page plus what it reported: console errors, page errors, requests."""

    def __init__(self, page: Any, url: str):
        self.page = page
        self.url = url
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)))
        page.on("request", lambda req: self.requests.append(req.url))

    def _on_console(self, msg: Any) -> None:
        if msg.type == "error":
            self.console_errors.append(msg.text)

    @property
    def foreign_requests(self) -> list[str]:
        return [u for u in self.requests if u != self.url and not u.startswith("data:")]

    @property
    def problems(self) -> list[str]:
        return (
            [f"console error: {m}" for m in self.console_errors]
            + [f"page error: {m}" for m in self.page_errors]
            + [f"network request: {u}" for u in self.foreign_requests]
        )

    def count(self, selector: str) -> int:
        return int(self.page.locator(selector).count())

    def text(self, selector: str) -> str:
        return str(self.page.locator(selector).first.inner_text())

    def options(self, selector: str) -> list[str]:
        """The values of a <select>'s options."""
        return list(
            self.page.eval_on_selector(selector, "s => Array.from(s.options).map(o => o.value)")
        )

    def value(self, selector: str) -> str:
        return str(self.page.eval_on_selector(selector, "s => s.value"))

    def select(self, selector: str, value: str) -> None:
        """Choose an option (fires `change`, as a user would)."""
        self.page.select_option(selector, value)

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@contextlib.contextmanager
def browser_page(
    url: str, *, width: int = 1280, height: int = 900, wait_for: str | None = None
) -> Iterator[BrowserPage]:
    """Open `url` in headless Chromium; skip the calling test when Chromium or playwright
    is not installed. `wait_for` is a selector to wait for after the load event."""
    executable = chromium_path()
    if executable is None:
        pytest.skip("no Chromium on this machine (set JETSTREAM_CHROMIUM)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            wrapped = BrowserPage(page, url)
            page.goto(url, wait_until="load")
            if wait_for:
                page.wait_for_selector(wait_for, state="attached")
            yield wrapped
            context.close()
        finally:
            browser.close()
