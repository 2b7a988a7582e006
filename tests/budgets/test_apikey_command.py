"""``manage.py apikey create|list|revoke``."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from budgets.models import ApiKey
from personas.models import Agent

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("apikey", *args, stdout=out)
    return out.getvalue()


def last_word(output: str) -> str:
    return output.strip().splitlines()[-1].split()[-1]


def test_create_operator_prints_the_key_as_the_last_word_of_the_last_line() -> None:
    out = run("create", "--operator", "--name", "ops laptop")

    raw = last_word(out)
    key = ApiKey.objects.get()
    assert raw.startswith(key.prefix + ".")
    assert key.scope == "operator"
    assert key.agent is None
    assert key.name == "ops laptop"
    assert ApiKey.objects.is_valid(raw)


def test_create_agent_key_is_tied_to_that_agent() -> None:
    Agent.objects.create(id="hermes")

    raw = last_word(run("create", "--agent", "hermes"))

    key = ApiKey.objects.get_from_key(raw)
    assert isinstance(key, ApiKey)
    assert key.scope == "agent"
    assert key.agent_id == "hermes"
    assert key.name == "agent hermes"


def test_the_raw_key_is_stored_only_hashed() -> None:
    raw = last_word(run("create", "--operator"))
    secret = raw.split(".", 1)[1]

    key = ApiKey.objects.get()
    assert secret not in key.hashed_key
    assert secret not in key.id
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM budgets_apikey")
        stored = " ".join(str(v) for row in cursor.fetchall() for v in row)
    assert secret not in stored
    assert raw not in stored


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create", "--agent", "ghost"], "no agent 'ghost'"),
        (["create", "--agent", "../etc"], "valid agent id"),
        (["create", "--operator", "--name", "x" * 51], "longer than 50"),
        (["revoke", "nosuchpx"], "no API key with prefix"),
        (["create", "--agent", "hermes", "--persona", "ghost"], "has no persona 'ghost'"),
        (["create", "--agent", "hermes", "--persona", "../x"], "has no persona"),
        (["create", "--operator", "--persona", "coder"], "use it with --agent"),
    ],
)
def test_bad_input_is_a_command_error(args: list[str], message: str) -> None:
    Agent.objects.create(id="hermes")
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not ApiKey.objects.filter(revoked=False).exists()


def test_create_needs_exactly_one_scope() -> None:
    Agent.objects.create(id="hermes")
    with pytest.raises(CommandError):
        run("create")
    with pytest.raises(CommandError):
        run("create", "--operator", "--agent", "hermes")


def test_list_shows_every_key_without_its_secret() -> None:
    Agent.objects.create(id="hermes")
    op = last_word(run("create", "--operator", "--name", "ops"))
    ag = last_word(run("create", "--agent", "hermes"))
    run("revoke", ag.split(".")[0])

    out = run("list")

    header, *rows = out.strip().splitlines()
    assert header.split() == [
        *("prefix", "name", "scope", "agent", "persona", "created", "last", "used", "revoked")
    ]
    assert len(rows) == 2
    op_row = next(r for r in rows if r.startswith(op.split(".")[0]))
    ag_row = next(r for r in rows if r.startswith(ag.split(".")[0]))
    assert op_row.split()[2:5] == ["operator", "-", "-"]
    assert "never" in op_row
    assert op_row.split()[-1] == "no"
    assert "hermes" in ag_row
    assert ag_row.split()[-1] == "yes"
    for raw in (op, ag):
        assert raw.split(".")[1] not in out


def test_list_says_so_when_there_are_no_keys() -> None:
    assert "no API keys" in run("list")


def test_revoke_makes_the_key_unusable_and_is_idempotent() -> None:
    raw = last_word(run("create", "--operator"))
    prefix = raw.split(".")[0]

    assert f"revoked {prefix}" in run("revoke", prefix)
    assert not ApiKey.objects.is_valid(raw)
    assert f"already revoked {prefix}" in run("revoke", prefix)


def test_create_a_persona_key_names_the_persona_and_lists_it(
    make_persona: Callable[..., Any],
) -> None:
    make_persona("hermes", "coder", "")

    out = run("create", "--agent", "hermes", "--persona", "coder")

    first = out.splitlines()[0]
    assert first.startswith('created persona key for hermes/coder "persona hermes/coder"')
    key = ApiKey.objects.get_from_key(last_word(out))
    assert isinstance(key, ApiKey)
    assert (key.scope, key.agent_id, key.persona_slug) == ("agent", "hermes", "coder")
    row = run("list").strip().splitlines()[1].split()
    assert row[row.index("agent") + 1 : row.index("agent") + 3] == ["hermes", "coder"]
