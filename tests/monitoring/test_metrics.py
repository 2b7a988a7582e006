"""GET /metrics: access control, the request/check/charge counters, and the spend gauges
computed at scrape time."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

METRIC = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$"
)


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text -> {(name, labels): value}."""
    out = {}
    for line in text.splitlines():
        match = METRIC.match(line)
        if match is None:
            continue
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', match["labels"] or ""))
        out[(match["name"], labels)] = float(match["value"])
    return out


def value(metrics: dict[Any, float], name: str, **labels: str) -> float | None:
    return metrics.get((name, frozenset(labels.items())))


def scrape(client: Any) -> dict[Any, float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return parse(response.content.decode())


def test_metrics_need_an_operator_key(
    db: None, api_client: APIClient, agent_client: Callable[[str], APIClient], agent: Any
) -> None:
    missing = Client().get("/metrics")
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "auth.missing"
    forbidden = agent_client("hermes").get("/metrics")
    assert forbidden.status_code == 403
    assert forbidden.json()["error"]["code"] == "auth.forbidden"
    wrong = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer nope.nope")
    assert wrong.status_code == 403
    assert api_client.get("/metrics").status_code == 200


def test_an_allow_listed_address_needs_no_key(db: None, settings: Any) -> None:
    settings.HAL0_METRICS_ALLOW = ["10.0.0.0/8"]
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="192.168.1.1").get("/metrics").status_code == 401


def test_requests_checks_and_charges_are_counted_by_route_template(
    api_client: APIClient, make_persona: Any, django_capture_on_commit_callbacks: Any
) -> None:
    make_persona(persona_id="coder", budget_toml="daily_usd = 1.0\n")
    base = "/api/agents/hermes/personas/coder/budget"
    route = "api/agents/<str:agent_id>/personas/<str:persona_id>/budget/check"
    before = scrape(api_client)
    api_client.post(f"{base}/check", {"estimated_cost_usd": 0.1}, format="json")
    api_client.post(f"{base}/check", {"estimated_cost_usd": 5}, format="json")
    charge = {"surface": "s", "model": "m", "cost_usd": 0.2, "request_id": "r1"}
    with django_capture_on_commit_callbacks(execute=True):  # counted once committed
        api_client.post(f"{base}/charge", charge, format="json")
        api_client.post(f"{base}/charge", charge, format="json")  # a replay: not counted
    after = scrape(api_client)

    def delta(name: str, **labels: str) -> float:
        return (value(after, name, **labels) or 0) - (value(before, name, **labels) or 0)

    count = "hal0_http_request_duration_seconds_count"
    assert delta(count, method="POST", route=route, status="200") == 2
    assert delta("hal0_checks_total", decision="allow") == 1
    assert delta("hal0_checks_total", decision="block") == 1
    assert delta("hal0_charges_total") == 1
    assert not any("hermes" in dict(labels).get("route", "") for _, labels in after)


def test_spend_gauges_per_persona_agent_and_platform(
    api_client: APIClient, make_persona: Any
) -> None:
    make_persona(persona_id="coder", budget_toml="daily_usd = 1.0\nlifetime_usd = 10\n")
    make_persona(persona_id="writer", budget_toml="")
    for persona, cost in (("coder", 0.25), ("writer", 0.5)):
        api_client.post(
            f"/api/agents/hermes/personas/{persona}/budget/charge",
            {"surface": "s", "model": "m", "cost_usd": cost, "request_id": f"r-{persona}"},
            format="json",
        )
    api_client.post(
        "/api/agents/hermes/personas/coder/budget/check",
        {"estimated_cost_usd": 0.1, "reserve": True},
        format="json",
    )
    m = scrape(api_client)
    coder = {"scope": "persona", "agent": "hermes", "persona": "coder"}
    assert value(m, "hal0_spent_usd", **coder, window="daily") == 0.25
    assert value(m, "hal0_cap_usd", **coder, window="daily") == 1.0
    assert value(m, "hal0_cap_usd", **coder, window="lifetime") == 10.0
    assert value(m, "hal0_cap_usd", **coder, window="monthly") is None  # no cap: no series
    assert value(m, "hal0_held_usd", **coder, window="daily") == 0.1
    agent = {"scope": "agent", "agent": "hermes", "persona": ""}
    assert value(m, "hal0_spent_usd", **agent, window="monthly") == 0.75
    platform = {"scope": "platform", "agent": "", "persona": ""}
    assert value(m, "hal0_spent_usd", **platform, window="lifetime") == 0.75
    assert value(m, "hal0_held_usd", **platform, window="daily") == 0.1


def test_agent_and_platform_caps_and_spend_in_their_own_timezones(
    api_client: APIClient, make_persona: Any, data_dir: Any
) -> None:
    import datetime as dt

    from budgets.monitoring.collectors import spend_gauges
    from budgets.services import budget_charge
    from hal0.money import to_nanos

    coder = make_persona(persona_id="coder", budget_toml="")
    writer = make_persona(persona_id="writer", budget_toml="")
    other = make_persona("other", "x", "")
    (data_dir / "agents" / "hermes" / "agent.toml").write_text(
        '[agent.budget]\ndaily_usd = 20.0\nmonthly_usd = 100\ntimezone = "Pacific/Kiritimati"\n'
    )
    (data_dir / "platform.toml").write_text("[platform.budget]\nmonthly_usd = 500.0\n")
    # At UTC+14 the agent's 11 March begins at 10:00 UTC on 10 March: the 05:00 charge is
    # in the personas' (UTC) day but in the agent's previous one.
    at = dt.datetime(2026, 3, 10, 5, 0, tzinfo=dt.UTC)
    for persona, cost, hour in ((coder, 1.0, 5), (writer, 2.0, 11), (other, 4.0, 11)):
        budget_charge(
            persona=persona,
            surface="s",
            model="m",
            cost_nanos=to_nanos(cost),
            request_id=f"r-{persona.slug}",
            now=at.replace(hour=hour),
        )
    g = spend_gauges(at.replace(hour=16))
    usd = {name: {k: v / 1e9 for k, v in values.items()} for name, values in g.items()}
    assert usd["cap"][("agent", "hermes", "", "daily")] == 20.0
    assert usd["cap"][("agent", "hermes", "", "monthly")] == 100.0
    assert ("agent", "hermes", "", "lifetime") not in usd["cap"]  # no cap: no series
    assert usd["cap"][("platform", "", "", "monthly")] == 500.0
    assert ("platform", "", "", "daily") not in usd["cap"]
    assert usd["spent"][("agent", "hermes", "", "daily")] == 2.0  # the agent's own day
    assert usd["spent"][("persona", "hermes", "coder", "daily")] == 1.0
    assert usd["spent"][("platform", "", "", "daily")] == 7.0  # UTC
    assert usd["spent"][("agent", "hermes", "", "lifetime")] == 3.0
    assert usd["spent"][("agent", "other", "", "daily")] == 4.0
    # And over HTTP, the agent's caps are series like the personas'.
    m = scrape(api_client)
    agent = {"scope": "agent", "agent": "hermes", "persona": ""}
    assert value(m, "hal0_cap_usd", **agent, window="daily") == 20.0
    assert value(m, "hal0_spent_usd", **agent, window="lifetime") == 3.0


def test_a_scrape_costs_the_same_queries_for_one_agent_or_many(
    api_client: APIClient, make_persona: Any, data_dir: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            scrape(api_client)
        return len(captured)

    make_persona("a0", "p", "daily_usd = 1.0\n")
    one = queries()
    for i in range(1, 6):
        make_persona(f"a{i}", "p", "daily_usd = 1.0\n")
        (data_dir / "agents" / f"a{i}" / "agent.toml").write_text("[agent.budget]\ndaily_usd = 5\n")
    assert queries() == one


@pytest.mark.usefixtures("db")
def test_the_webhook_backlog_is_exported(api_client: APIClient) -> None:
    m = scrape(api_client)
    assert value(m, "hal0_webhook_deliveries", state="pending") == 0
    assert value(m, "hal0_webhook_attempts_total", outcome="failure") == 0
    assert value(m, "hal0_webhook_oldest_pending_seconds") == 0
