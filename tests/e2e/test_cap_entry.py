"""Typing a cap in a real browser: the note beside the field shows the amount it will be
saved as while the operator types, an ambiguous comma or an amount that would round to a
cap of zero is refused with a message, and "Saved" says what changed, before -> after."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from personas import paths
from personas.models import Persona

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def coder_page(logged_in: Page, live_server: Any, make_persona: Any) -> Page:
    coder: Persona = make_persona("hermes", "coder", "daily_usd = 5.0\n")
    logged_in.goto(f"{live_server.url}/admin/personas/persona/{coder.pk}/change/")
    return logged_in


def daily_cap_in_file() -> str:
    text = paths.persona_file("hermes", "coder").read_text(encoding="utf-8")
    found = re.search(r"^daily_usd = (.*)$", text, re.M)
    assert found
    return found.group(1)


def test_the_note_shows_the_parsed_amount_as_the_operator_types(coder_page: Page) -> None:
    page = coder_page
    note = page.locator(".field-daily_usd .hal0-capnote")
    expect(note).to_have_text("= $5.00")  # as served

    page.fill("#id_daily_usd", "1234.5")
    expect(note).to_have_text("= $1,234.50")
    page.fill("#id_daily_usd", "1,234.5")
    expect(note).to_have_text("= $1,234.50")
    page.fill("#id_daily_usd", "0,5")
    expect(note).to_have_text("ambiguous comma: write 0.5 or 1000")
    expect(note).to_have_attribute("data-kind", "invalid")
    page.fill("#id_daily_usd", "0.0000000001")
    expect(note).to_have_text("below $0.000000001: would be a cap of zero")
    page.fill("#id_daily_usd", "1e-400")
    expect(note).to_have_text("below $0.000000001: would be a cap of zero")
    page.fill("#id_daily_usd", "0.000000001")
    expect(note).to_have_text("= $0.000000001")
    page.fill("#id_daily_usd", "0")
    expect(note).to_have_text("a cap of zero: every call with a cost is over it")


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("0,5", "'0,5' is ambiguous: write decimals with a point (0.5)"),
        ("1e-400", "would be saved as a cap of zero"),
        ("0.0000000001", "would be saved as a cap of zero"),
    ],
)
def test_a_cap_that_would_save_another_amount_is_refused(
    coder_page: Page, typed: str, message: str
) -> None:
    page = coder_page

    page.fill("#id_daily_usd", typed)
    page.click("input[name=_save]")

    expect(page.locator(".field-daily_usd .errorlist")).to_contain_text(message)
    # The server renders the same note for what was typed.
    expect(page.locator(".field-daily_usd .hal0-capnote")).to_have_attribute("data-kind", "invalid")
    assert daily_cap_in_file() == "5.0"


def test_saved_says_before_and_after(coder_page: Page) -> None:
    page = coder_page

    page.fill("#id_daily_usd", "0.5")
    page.click("input[name=_save]")

    expect(page.locator(".messagelist")).to_contain_text("daily cap $5.00 → $0.50")
    assert daily_cap_in_file() == "0.5"
