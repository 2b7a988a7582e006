"""An operator prices a local model in prices.toml and checks it on the Prices page, in
a real browser."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_operator_looks_up_an_override_and_a_catalogue_price(
    logged_in: Page, data_dir: Path
) -> None:
    (data_dir / "prices.toml").write_text(
        '[[price]]\nmodel = "llama-3.3-70b"\nsurface = "local"\n'
        "input_per_mtok_usd = 0\noutput_per_mtok_usd = 0\n"
    )
    page = logged_in

    page.click("nav.hal0-nav >> text=Prices")
    expect(page.locator("#hal0-overrides")).to_contain_text("llama-3.3-70b")

    page.fill("input[name=model]", "llama-3.3-70b")
    page.fill("input[name=surface]", "local")
    page.click("#hal0-price-lookup input[type=submit]")
    expect(page.locator("#hal0-price")).to_contain_text("override")

    page.fill("input[name=model]", "gpt-4o")
    page.fill("input[name=surface]", "openai")
    page.click("#hal0-price-lookup input[type=submit]")
    expect(page.locator("#hal0-price")).to_contain_text("catalogue (openai: gpt-4o)")
    expect(page.locator("#hal0-price")).to_contain_text("$2.5")

    page.fill("input[name=model]", "my-finetune")
    page.click("#hal0-price-lookup input[type=submit]")
    expect(page.locator("#hal0-price-unknown")).to_contain_text("add it to prices.toml")
