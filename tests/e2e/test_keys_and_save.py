"""In a real browser: the new API key's Copy button puts the key on the clipboard, revoking
asks first, and the persona page's Save is on screen beside the caps on a phone."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from playwright.sync_api import Browser

from budgets.models import ApiKey
from tests.e2e.test_accessibility import AXE, PHONE, axe_violations, login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_the_new_key_is_copied_by_its_button(
    browser: Browser, live_server: Any, operator: Any
) -> None:
    context = browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    login(page, live_server)
    page.goto(f"{live_server.url}{reverse('admin:budgets_apikey_add')}")
    page.select_option("#id_scope", "operator")
    page.fill("#id_name", "ci runner")
    page.click("input[name=_save]")
    shown = page.locator("#hal0-new-key").inner_text().strip()
    assert ApiKey.objects.is_valid(shown)
    page.click("button.hal0-copy")
    page.wait_for_function("() => document.querySelector('.hal0-copy').textContent === 'Copied'")
    assert page.evaluate("() => navigator.clipboard.readText()") == shown
    context.close()


def test_revoking_a_key_asks_first(browser: Browser, live_server: Any, operator: Any) -> None:
    from budgets.apikeys import create_key

    key, raw = create_key(scope="operator", name="old laptop")
    context = browser.new_context()
    page = context.new_page()
    login(page, live_server)
    page.goto(f"{live_server.url}{reverse('admin:budgets_apikey_changelist')}")
    page.check(f"input[name=_selected_action][value='{key.pk}']")
    page.select_option("select[name=action]", "revoke")
    page.click("button[name=index]")
    page.wait_for_selector("#hal0-revoke-confirm")
    assert key.prefix in page.locator("#hal0-revoke-keys").inner_text()
    assert ApiKey.objects.is_valid(raw)  # asked, not yet done
    # The confirmation is an admin page too: axe-clean (axe-core vendored by make setup).
    assert AXE.exists()
    bad = [v for v in axe_violations(page) if v["impact"] in ("critical", "serious")]
    assert bad == []
    page.click("#hal0-revoke-confirm")
    page.wait_for_selector(".messagelist")
    assert "Revoked 1 key" in page.locator(".messagelist").inner_text()
    assert not ApiKey.objects.is_valid(raw)
    context.close()


def test_save_is_on_screen_beside_the_caps_on_a_phone(
    browser: Browser, live_server: Any, operator: Any, make_persona: Any
) -> None:
    persona = make_persona("hermes", "hermes", budget_toml="daily_usd = 2.0\n")
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    login(page, live_server)
    page.goto(f"{live_server.url}{reverse('admin:personas_persona_change', args=[persona.pk])}")
    # The first cap field in view, the folded details untouched: Save is on the screen.
    page.locator("#id_daily_usd").scroll_into_view_if_needed()
    save = page.locator("input[name=_save]")
    box = save.bounding_box()
    assert box is not None
    assert box["y"] >= 0
    assert box["y"] + box["height"] <= PHONE["height"]
    assert page.locator("details[open]").count() == 0
    page.fill("#id_daily_usd", "3")
    save.click()
    page.wait_for_selector(".messagelist .success")
    context.close()
