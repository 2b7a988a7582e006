"""An operator logs in through the real form in a real browser; wrong passwords lock out."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Page

from tests.e2e.conftest import OPERATOR, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_operator_logs_in_and_reaches_the_spend_page(logged_in: Page, live_server: Any) -> None:
    logged_in.click("nav.hal0-nav >> text=Spend")
    logged_in.wait_for_selector("#hal0-personas")
    assert logged_in.title().startswith("Spend")
    screenshot(logged_in, "spend-empty.png")


def test_repeated_wrong_passwords_lock_the_login(
    page: Page, live_server: Any, operator: Any, settings: Any
) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT):
        page.goto(f"{live_server.url}/admin/login/")
        page.fill("#id_username", OPERATOR[0])
        page.fill("#id_password", "wrong")
        page.click("input[type=submit]")
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", OPERATOR[0])
    page.fill("#id_password", OPERATOR[1])
    page.click("input[type=submit]")
    page.wait_for_selector("text=Too many failed logins")
    assert "/admin/login/" in page.url
