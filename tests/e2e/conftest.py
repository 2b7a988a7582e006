"""End-to-end fixtures: Debian's Chromium driven by Playwright against ``live_server``.

The browser is the system's (``scripts/ensure-chromium`` installs it); Playwright never
downloads one. A missing browser fails the run instead of skipping it: these tests are
part of ``make test`` and CI.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Playwright's sync API runs an event loop in this thread; Django's guard against ORM calls
# from async code would then refuse the test's own (synchronous) database work.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = os.environ.get("HAL0_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
OPERATOR = ("olivia", "a-long-operator-passphrase")


# Per module, not per session: while Playwright's sync API is open it keeps an event loop
# running in this thread, and tests collected after the e2e ones (client/tests) that call
# asyncio.run() would fail with "cannot be called from a running event loop".
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if executable is None:
        pytest.fail("chromium is missing: run scripts/ensure-chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900}, color_scheme="light")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def operator(transactional_db: None, django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser(
        OPERATOR[0], "olivia@example.com", OPERATOR[1]
    )


@pytest.fixture
def logged_in(page: Page, live_server: Any, operator: Any) -> Page:
    """A browser page with an operator logged in through the real login form."""
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", OPERATOR[0])
    page.fill("#id_password", OPERATOR[1])
    page.click("input[type=submit]")
    page.wait_for_selector("#user-tools")
    return page


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot under test-artifacts/ (gitignored) and return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    if full_page:
        # Scrolled to the end, so that a sticky bar (the persona page's Save row) is drawn
        # where it belongs in the page, not over the fields at the first screen's bottom.
        page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
    page.screenshot(path=str(path), full_page=full_page)
    return path
