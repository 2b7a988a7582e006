"""budgets.prices without HTTP: the catalogue matches genai-prices' own arithmetic, the
worst case never falls short, prices.toml parses with clear messages, and nothing is
fetched from the network."""

from __future__ import annotations

import datetime as dt
import socket
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import genai_prices
import pytest

from budgets.prices import catalogue, store
from budgets.prices.overrides import EMPTY, PricesInvalid, parse_prices
from budgets.prices.rates import Rate, Rates, Usage, UsageInvalid, cost_nanos, worst_case_nanos
from budgets.prices.resolve import clear_cache, resolve_price

NOW = dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC)


def genai_nanos(model: str, provider: str, usage: Usage) -> int:
    """genai-prices' own price of the usage, in nano-USD rounded up."""
    calc = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read_tokens=usage.cache_read_tokens,
            cache_write_tokens=usage.cache_write_tokens,
        ),
        model,
        provider_id=provider,
        genai_request_timestamp=NOW,
    )
    return int((calc.total_price * 10**9).to_integral_value(rounding=ROUND_CEILING))


def catalogue_price(model: str, surface: str | None) -> Any:
    price = resolve_price(model, surface, overrides=EMPTY, at=NOW)
    assert price is not None
    return price


@pytest.mark.parametrize(
    ("model", "surface", "provider"),
    [
        ("gpt-4o", "openai", "openai"),
        ("gpt-4o-mini", "openai", "openai"),
        ("claude-3-7-sonnet-latest", "anthropic", "anthropic"),
        ("anthropic/claude-3.7-sonnet", "openrouter", "openrouter"),
        ("deepseek-chat", "deepseek", "deepseek"),
        ("gemini-2.5-pro", "google", "google"),
    ],
)
@pytest.mark.parametrize(
    "usage",
    [
        Usage(input_tokens=1200, output_tokens=800),
        Usage(input_tokens=1, output_tokens=0),
        Usage(input_tokens=123_457, output_tokens=9_999),
        # Past the 200k-token tier of the models that have one.
        Usage(input_tokens=250_001, output_tokens=4_000),
        Usage(input_tokens=10_000, output_tokens=500, cache_read_tokens=6_000),
        Usage(10_000, 500, cache_read_tokens=3_000, cache_write_tokens=2_000),
    ],
    ids=["plain", "one-token", "odd", "tier", "cache-read", "cache-read-write"],
)
def test_a_catalogue_cost_is_genai_prices_own_to_the_nano_usd(
    model: str, surface: str, provider: str, usage: Usage
) -> None:
    price = catalogue_price(model, surface)

    assert price.source == "catalogue"
    assert price.version == f"genai-prices {genai_prices.__version__}"
    assert cost_nanos(price.rates, usage) == genai_nanos(model, provider, usage)


def test_gpt_4o_at_its_list_price_in_exact_nano_usd() -> None:
    rates = catalogue_price("gpt-4o", "openai").rates

    # $2.50 / $10 per million, $1.25 for cache reads: 1,000 plain + 1,000 cached input and
    # 1,000 output tokens are 0.0025 + 0.00125 + 0.01 USD.
    assert (rates.input.base, rates.output.base) == (Decimal("2.5"), Decimal("10"))
    usage = Usage(input_tokens=2_000, output_tokens=1_000, cache_read_tokens=1_000)
    assert cost_nanos(rates, usage) == 13_750_000


def test_cache_tokens_without_a_rate_of_their_own_are_billed_as_input() -> None:
    rates = Rates(input=Rate(Decimal(3)), output=Rate(Decimal(15)))

    with_cache = Usage(input_tokens=1_000, output_tokens=0, cache_read_tokens=600)
    assert cost_nanos(rates, with_cache) == cost_nanos(rates, Usage(input_tokens=1_000))


def test_a_fraction_of_a_nano_usd_is_rounded_up_once_on_the_total() -> None:
    rates = Rates(input=Rate(Decimal("0.0001")), output=Rate(Decimal("0.0001")))

    # 3 tokens at 1e-10 USD each: 0.3 nano-USD, billed as 1.
    assert cost_nanos(rates, Usage(input_tokens=2, output_tokens=1)) == 1
    assert cost_nanos(rates, Usage()) == 0


def test_cache_tokens_beyond_the_input_tokens_are_refused() -> None:
    rates = catalogue_price("claude-3-7-sonnet-latest", "anthropic").rates

    with pytest.raises(UsageInvalid, match="must not exceed input_tokens"):
        cost_nanos(rates, Usage(input_tokens=10, cache_read_tokens=6, cache_write_tokens=5))


@pytest.mark.parametrize(
    ("model", "surface"),
    [("claude-3-7-sonnet-latest", "anthropic"), ("gemini-2.5-pro", "google"), ("gpt-4o", "openai")],
)
def test_the_worst_case_covers_every_usage_within_its_tokens(model: str, surface: str) -> None:
    rates = catalogue_price(model, surface).rates
    estimated_in, estimated_out = 240_000, 8_000
    worst = worst_case_nanos(rates, input_tokens=estimated_in, max_output_tokens=estimated_out)

    for usage in [
        Usage(estimated_in, estimated_out),
        Usage(estimated_in, estimated_out, cache_write_tokens=estimated_in),
        Usage(estimated_in, estimated_out, cache_read_tokens=estimated_in // 2),
        Usage(150_000, estimated_out, cache_write_tokens=100_000),
        Usage(1, 1),
    ]:
        assert cost_nanos(rates, usage) <= worst
    # And it is not padded: the dearest of those usages costs exactly the worst case.
    assert (
        max(
            cost_nanos(rates, Usage(estimated_in, estimated_out)),
            cost_nanos(rates, Usage(estimated_in, estimated_out, cache_write_tokens=estimated_in)),
        )
        == worst
    )


def test_a_surface_picks_the_provider_and_others_match_across_providers() -> None:
    assert catalogue_price("openai/gpt-4o", "openrouter").provider == "openrouter"
    # A vendor prefix on the vendor's own surface, and on a gateway that names no provider.
    assert catalogue_price("openai/gpt-4o", "openai").catalogue_model == "gpt-4o"
    assert catalogue_price("openai/gpt-4o", "my-gateway").provider == "openai"
    assert catalogue_price("claude-3-7-sonnet-latest", None).provider == "anthropic"
    # Surface names are not case-sensitive; "gemini" is Google's.
    assert catalogue_price("gemini-2.5-pro", "Gemini").provider == "google"


def test_a_local_surface_has_no_catalogue_price() -> None:
    # Someone else's hosted price for a model run on the operator's own machine would be
    # invented money: prices.toml prices local models.
    assert resolve_price("llama-3.3-70b", "local", overrides=EMPTY, at=NOW) is None
    assert resolve_price("llama-3.3-70b", "ollama", overrides=EMPTY, at=NOW) is None
    assert resolve_price("no-such-model-anywhere", "openai", overrides=EMPTY, at=NOW) is None


def test_the_surface_table_names_only_catalogue_providers() -> None:
    ids = {p.id for p in catalogue.providers()}
    assert {p for p in catalogue.SURFACE_PROVIDERS.values() if p is not None} <= ids


def test_prices_come_from_the_bundled_data_without_any_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a price lookup tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    catalogue._snapshot.cache_clear()
    clear_cache()

    price = catalogue_price("gpt-4o", "openai")

    assert cost_nanos(price.rates, Usage(1000, 1000)) == 12_500_000


# ---------------------------------------------------------------------------------------
# prices.toml


GOOD = """
# local models are free
[[price]]
model = "llama-3.3-70b"
surface = "local"
input_per_mtok_usd = 0
output_per_mtok_usd = 0

[[price]]
model = "gpt-4o"
input_per_mtok_usd = 2
output_per_mtok_usd = 8.5
cache_read_per_mtok_usd = 0.5
"""


def test_prices_toml_parses_into_overrides_that_win() -> None:
    overrides = parse_prices(GOOD)

    assert [(o.model, o.surface, o.index) for o in overrides.entries] == [
        ("llama-3.3-70b", "local", 1),
        ("gpt-4o", None, 2),
    ]
    local = resolve_price("llama-3.3-70b", "local", overrides=overrides, at=NOW)
    assert local is not None
    assert local.source == "override"
    assert local.rates.input == local.rates.output == Rate(Decimal(0))
    gpt = resolve_price("gpt-4o", "openai", overrides=overrides, at=NOW)
    assert gpt is not None
    assert gpt.source == "override"
    assert gpt.version.startswith("prices.toml ")
    # A whole price: the cache write rate is not taken from the catalogue.
    assert gpt.rates.cache_write is None
    assert cost_nanos(gpt.rates, Usage(2_000, 1_000, cache_read_tokens=1_000)) == 11_000_000


def test_a_surface_override_beats_the_one_for_every_surface() -> None:
    overrides = parse_prices(
        GOOD
        + """
[[price]]
model = "GPT-4o"
surface = "azure"
input_per_mtok_usd = 1
output_per_mtok_usd = 1
"""
    )

    azure = resolve_price("gpt-4o", "Azure", overrides=overrides, at=NOW)
    other = resolve_price("gpt-4o", "openai", overrides=overrides, at=NOW)
    assert azure is not None
    assert azure.rates.output == Rate(Decimal(1))
    assert other is not None
    assert other.rates.output == Rate(Decimal("8.5"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[price]\n", "not valid TOML"),
        ("price = 3\n", "'price' must be an array of tables"),
        ("[[price]]\ninput_per_mtok_usd = 1\noutput_per_mtok_usd = 1\n", "'model' is required"),
        ('[[price]]\nmodel = "m"\noutput_per_mtok_usd = 1\n', "'input_per_mtok_usd' is required"),
        ('[[price]]\nmodel = ""\ninput_per_mtok_usd = 1\noutput_per_mtok_usd = 1\n', "non-empty"),
        (
            '[[price]]\nmodel = "m"\ninput_per_mtok_usd = -1\noutput_per_mtok_usd = 1\n',
            "price #1: 'input_per_mtok_usd' must be a finite number >= 0",
        ),
        (
            '[[price]]\nmodel = "m"\ninput_per_mtok_usd = "1"\noutput_per_mtok_usd = 1\n',
            "must be a number",
        ),
        (
            '[[price]]\nmodel = "m"\ninput_per_mtok_usd = true\noutput_per_mtok_usd = 1\n',
            "must be a number",
        ),
        (
            '[[price]]\nmodel = "m"\ninput_per_mtok_usd = nan\noutput_per_mtok_usd = 1\n',
            "finite",
        ),
        (
            '[[price]]\nmodel = "m"\ninput_per_mtok_usd = 1e9\noutput_per_mtok_usd = 1\n',
            "at most 1000000",
        ),
        (
            '[[price]]\nmodel = "m"\ninput_usd = 1\ninput_per_mtok_usd = 1\n'
            "output_per_mtok_usd = 1\n",
            "unknown key 'input_usd'",
        ),
        (
            '[[price]]\nmodel = "m"\ninput_per_mtok_usd = 1\noutput_per_mtok_usd = 1\n'
            '[[price]]\nmodel = "M"\ninput_per_mtok_usd = 2\noutput_per_mtok_usd = 2\n',
            "price #2: model 'M' is already priced by price #1",
        ),
    ],
)
def test_a_bad_prices_toml_is_refused_with_a_message_naming_entry_and_key(
    text: str, message: str
) -> None:
    with pytest.raises(PricesInvalid) as caught:
        parse_prices(text)
    assert message in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    text = '[[price]]\nmodel = 3\n[[price]]\nmodel = "m"\ninput_per_mtok_usd = -1\n'

    with pytest.raises(PricesInvalid) as caught:
        parse_prices(text)

    assert len(caught.value.errors) == 5


def test_hand_edits_are_picked_up_and_a_malformed_file_keeps_the_last_good_prices(
    data_dir: Path,
) -> None:
    file = data_dir / "prices.toml"
    assert store.current().overrides.entries == ()

    file.write_text(GOOD)
    first = store.current()
    assert [o.model for o in first.overrides.entries] == ["llama-3.3-70b", "gpt-4o"]
    assert not first.malformed

    file.write_text(GOOD.replace("8.5", "oops"))
    broken = store.current()
    assert broken.overrides == first.overrides
    assert broken.malformed
    assert "not valid TOML" in broken.errors[0]
    assert str(data_dir) not in broken.errors[0]

    file.write_text(GOOD.replace("8.5", "9.5"))
    fixed = store.current()
    assert not fixed.malformed
    assert fixed.overrides.find("gpt-4o", None).rates.output == Rate(Decimal("9.5"))  # type: ignore[union-attr]


def test_a_process_that_starts_with_a_malformed_file_uses_the_catalogue_and_says_so(
    data_dir: Path,
) -> None:
    (data_dir / "prices.toml").write_text("[[price]]\nmodel = 1\n")

    state = store.current()

    assert state.overrides.entries == ()
    assert state.malformed
