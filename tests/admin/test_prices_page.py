"""The Prices page and the ledger's pricing columns in the admin."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from budgets.prices import catalogue
from tests.budgets.ledger_support import make_persona, record

pytestmark = pytest.mark.django_db

PAGE = "/admin/prices/"
PRICES = """
[[price]]
model = "llama-3.3-70b"
surface = "local"
input_per_mtok_usd = 0
output_per_mtok_usd = 0

[[price]]
model = "gpt-4o"
input_per_mtok_usd = 2
output_per_mtok_usd = 8
cache_read_per_mtok_usd = 0.5
"""


def test_it_lists_the_overrides_in_force(staff_client: Client, data_dir: Path) -> None:
    (data_dir / "prices.toml").write_text(PRICES)

    body = staff_client.get(PAGE).content.decode()

    assert catalogue.VERSION in body
    overrides = body[body.index('id="hal0-overrides"') :]
    assert "llama-3.3-70b" in overrides
    assert "every surface" in overrides
    assert "$0.5" in overrides
    assert "as input" in overrides  # gpt-4o's cache writes: no rate of their own


def test_without_a_file_it_says_every_price_is_the_catalogues(staff_client: Client) -> None:
    body = staff_client.get(PAGE).content.decode()

    assert "no prices.toml" in body
    assert "every price comes from the catalogue" in body


def test_a_malformed_file_is_reported_and_the_last_good_prices_shown(
    staff_client: Client, data_dir: Path
) -> None:
    (data_dir / "prices.toml").write_text(PRICES)
    staff_client.get(PAGE)
    (data_dir / "prices.toml").write_text(PRICES.replace("output_per_mtok_usd = 8", ""))

    body = staff_client.get(PAGE).content.decode()

    assert 'id="hal0-prices-errors"' in body
    assert "price #2: &#x27;output_per_mtok_usd&#x27; is required" in body
    assert "gpt-4o" in body[body.index('id="hal0-overrides"') :]
    assert str(data_dir) not in body


def test_the_lookup_shows_the_price_a_call_would_get(staff_client: Client, data_dir: Path) -> None:
    (data_dir / "prices.toml").write_text(PRICES)

    override = staff_client.get(PAGE, {"model": "gpt-4o", "surface": "openai"}).content.decode()
    catalogue_price = staff_client.get(
        PAGE, {"model": "claude-3-7-sonnet-latest", "surface": "anthropic"}
    ).content.decode()
    unknown = staff_client.get(PAGE, {"model": "mine", "surface": "local"}).content.decode()

    assert "override" in override[override.index('id="hal0-price"') :]
    found = catalogue_price[catalogue_price.index('id="hal0-price"') :]
    assert "catalogue (anthropic: claude-3-7-sonnet-latest)" in found
    assert "$3.75" in found
    assert "no price for model &#x27;mine&#x27; on surface &#x27;local&#x27;" in unknown


def test_the_page_is_for_staff_only(client: Client) -> None:
    response = client.get(PAGE)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_the_ledger_shows_an_unpriced_charge_as_not_recorded_and_filters_on_it(
    staff_client: Client,
) -> None:
    coder = make_persona("hermes", "coder")
    record(coder, 1, request_id="req-priced", cost_source="catalogue")
    record(coder, 1, request_id="req-unpriced", cost_nanos=None, cost_source="unpriced")

    body = staff_client.get("/admin/budgets/charge/").content.decode()
    unknown = staff_client.get("/admin/budgets/charge/", {"cost": "unknown"}).content.decode()

    assert "not recorded" in body
    assert "catalogue" in body
    assert "req-unpriced" in unknown
    assert "req-priced" not in unknown
