"""``manage.py webhook add|list|remove``."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from budgets.events.models import WebhookEndpoint


def run(*args: str) -> str:
    out = StringIO()
    call_command("webhook", *args, stdout=out)
    return out.getvalue()


def test_add_prints_the_secret_as_the_last_word_of_the_last_line(db: None, agent: Any) -> None:
    out = run(
        "add",
        "https://hooks.example.com/hal0",
        "--events",
        "budget.warn,budget.exceeded",
        "--agent",
        "hermes",
        "--format",
        "slack",
    )
    secret = out.strip().splitlines()[-1].split()[-1]
    endpoint = WebhookEndpoint.objects.get()
    assert secret.startswith("whsec_")
    assert endpoint.secret == secret
    assert endpoint.event_types == ["budget.warn", "budget.exceeded"]
    assert (endpoint.agent_id, endpoint.format) == ("hermes", "slack")


def test_list_shows_endpoints_without_their_secrets(db: None) -> None:
    run("add", "https://a.example.com/h")
    run("add", "http://b.example.com/h", "--events", "budget.blocked")
    out = run("list")
    assert "https://a.example.com/h\tstandard\tevents=all\tagent=all\tenabled" in out
    assert "events=budget.blocked" in out
    assert "whsec_" not in out
    assert out.strip().endswith("2 endpoint(s)")


def test_remove_deletes_it_and_an_unknown_id_is_an_error(db: None) -> None:
    run("add", "https://a.example.com/h")
    endpoint = WebhookEndpoint.objects.get()
    assert run("remove", str(endpoint.pk)).strip() == f"removed webhook endpoint {endpoint.pk}"
    assert not WebhookEndpoint.objects.exists()
    with pytest.raises(CommandError, match="no webhook endpoint"):
        run("remove", str(endpoint.pk))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://x.example.com"], "is not an http"),
        (["https://x.example.com", "--events", "budget.nope"], "unknown event type"),
        (["https://x.example.com", "--agent", "ghost"], "unknown agent"),
    ],
)
def test_bad_input_is_a_command_error_and_adds_nothing(
    db: None, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        run("add", *args)
    assert not WebhookEndpoint.objects.exists()
