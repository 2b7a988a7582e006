"""write_budget: the one writer of persona files, and parse_budget_body for PUT bodies."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from hal0.errors import ApiError
from hal0.parsers import loads
from personas.models import BudgetChange, Persona
from personas.services import parse_budget_body, resolve_persona, write_budget
from personas.toml_store import BudgetSpec, parse_persona_text, sha256_text

USD = 1_000_000_000

COMMENTED = """\
# my notes
[persona]
id = "coder"
display_name = "Coder"

[persona.budget]
daily_usd = 1.0   # keep this comment
flavour = "mint"  # unknown, kept

[persona.prompt]
system = "x"
"""


def file_of(persona: Persona, data_dir: Path) -> Path:
    return data_dir / "agents" / persona.agent_id / "personas" / f"{persona.slug}.toml"


@pytest.mark.django_db
def test_it_writes_only_the_budget_block_and_updates_the_row(
    make_persona: Callable[..., Persona], data_dir: Path
) -> None:
    persona = make_persona(budget_toml="daily_usd = 1.0\n")
    path = file_of(persona, data_dir)
    path.write_text(COMMENTED)
    persona = resolve_persona(persona.agent, "coder")

    row = write_budget(
        persona,
        BudgetSpec(daily_nanos=2 * USD, monthly_nanos=0, extra={"flavour": "mint"}),
        actor="user:ops",
        via="api",
    )

    text = path.read_text()
    assert text == (
        "# my notes\n"
        "[persona]\n"
        'id = "coder"\n'
        'display_name = "Coder"\n'
        "\n"
        "[persona.budget]\n"
        "daily_usd = 2.0   # keep this comment\n"
        'flavour = "mint"  # unknown, kept\n'
        "monthly_usd = 0.0\n"
        "hard_cap = true\n"
        "\n"
        "[persona.prompt]\n"
        'system = "x"\n'
    )
    assert row.daily_cap_nanos == 2 * USD
    assert row.monthly_cap_nanos == 0
    assert row.content_sha256 == sha256_text(text)
    assert resolve_persona(persona.agent, "coder").pk == row.pk  # no re-parse needed
    change = BudgetChange.objects.get()
    assert (change.actor, change.via) == ("user:ops", "api")
    assert change.before == {"daily_usd": 1.0, "hard_cap": True}
    assert change.after == {"daily_usd": 2.0, "monthly_usd": 0.0, "hard_cap": True}


@pytest.mark.django_db
def test_writing_the_same_budget_again_changes_nothing(
    make_persona: Callable[..., Persona], data_dir: Path
) -> None:
    persona = make_persona(budget_toml="daily_usd = 1.0\nhard_cap = true\n")
    before = file_of(persona, data_dir).read_bytes()

    write_budget(persona, BudgetSpec(daily_nanos=USD), actor="a", via="api")

    assert file_of(persona, data_dir).read_bytes() == before
    assert BudgetChange.objects.count() == 0


@pytest.mark.django_db
def test_a_stale_sha256_is_a_conflict_with_the_current_values(
    make_persona: Callable[..., Persona], data_dir: Path
) -> None:
    persona = make_persona(budget_toml="daily_usd = 1.0\n")
    seen = persona.content_sha256
    path = file_of(persona, data_dir)
    stat = path.stat()
    path.write_text(path.read_text().replace("1.0", "4.0"))  # someone else's hand edit
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    edited = path.read_text()

    with pytest.raises(ApiError) as caught:
        write_budget(
            persona, BudgetSpec(daily_nanos=9 * USD), actor="a", via="admin", expected_sha256=seen
        )

    assert caught.value.status_code == 409
    assert caught.value.code == "persona.conflict"
    assert caught.value.details["budget"] == {"daily_usd": 4.0, "hard_cap": True}
    assert caught.value.details["sha256"] == sha256_text(edited)
    assert path.read_text() == edited  # nothing written
    # The hand edit itself was taken in and audited on the way.
    assert list(BudgetChange.objects.values_list("via", flat=True)) == ["file"]

    write_budget(
        persona,
        BudgetSpec(daily_nanos=9 * USD),
        actor="a",
        via="admin",
        expected_sha256=sha256_text(edited),
    )
    assert parse_persona_text(path.read_text(), stem="coder").budget.daily_nanos == 9 * USD


@pytest.mark.django_db
def test_a_malformed_file_is_not_written_over(
    make_persona: Callable[..., Persona], data_dir: Path
) -> None:
    persona = make_persona(budget_toml="daily_usd = 1.0\n")
    path = file_of(persona, data_dir)
    path.write_text("[persona\nbroken = ")

    with pytest.raises(ApiError) as caught:
        write_budget(persona, BudgetSpec(daily_nanos=USD), actor="a", via="api")

    assert caught.value.code == "persona.malformed"
    assert path.read_text() == "[persona\nbroken = "
    assert Persona.objects.get(pk=persona.pk).daily_cap_nanos == USD


@pytest.mark.django_db
def test_a_deleted_file_is_not_found(make_persona: Callable[..., Persona], data_dir: Path) -> None:
    persona = make_persona()
    file_of(persona, data_dir).unlink()

    with pytest.raises(ApiError) as caught:
        write_budget(persona, BudgetSpec(), actor="a", via="api")

    assert caught.value.code == "persona.not_found"
    assert not file_of(persona, data_dir).exists()


# --- PUT bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        ('{"daily_cap": 1}', "daily_cap", "'daily_cap' is not a budget key"),
        ('{"daily_usd": -1}', "daily_usd", "daily_usd must be >= 0"),
        ('{"daily_usd": NaN}', "daily_usd", "daily_usd must be a finite number"),
        ('{"daily_usd": Infinity}', "daily_usd", "daily_usd must be a finite number"),
        ('{"daily_usd": true}', "daily_usd", "daily_usd must be a number"),
        ('{"daily_usd": "1"}', "daily_usd", "daily_usd must be a number"),
        ('{"hard_cap": "false"}', "hard_cap", "hard_cap must be true or false"),
        ('{"warn_at": 2}', "warn_at", "warn_at must be a number between 0 and 1"),
        ('{"timezone": "Mars/Base"}', "timezone", "timezone 'Mars/Base' is not a known IANA"),
    ],
)
def test_a_bad_body_is_budget_invalid_naming_the_key(body: str, key: str, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_budget_body(loads(body))

    assert caught.value.status_code == 400
    assert caught.value.code == "budget.invalid"
    assert caught.value.message.startswith(message)
    assert caught.value.details == {"key": key}


def test_a_body_that_is_not_an_object_is_invalid_body() -> None:
    with pytest.raises(ApiError) as caught:
        parse_budget_body([1])

    assert caught.value.code == "budget.invalid_body"


def test_a_body_replaces_the_whole_block() -> None:
    spec = parse_budget_body(loads('{"daily_usd": 0.1, "monthly_usd": null, "warn_at": 0.75}'))

    assert spec == BudgetSpec(daily_nanos=100_000_000, warn_at=Decimal("0.75"))
    assert parse_budget_body({}) == BudgetSpec()  # missing cap = no cap, hard_cap = true


# --- concurrency ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_interleave(
    make_persona: Callable[..., Persona], data_dir: Path
) -> None:
    persona = make_persona(budget_toml="daily_usd = 1.0\n")
    path = file_of(persona, data_dir)
    writers = 8
    errors: list[BaseException] = []
    start = threading.Barrier(writers)

    def write(n: int) -> None:
        try:
            start.wait()
            write_budget(
                persona,
                BudgetSpec(daily_nanos=(n + 2) * USD, per_call_nanos=n),
                actor=f"writer-{n}",
                via="api",
            )
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    final = parse_persona_text(path.read_text(), stem="coder").budget
    row = Persona.objects.get(pk=persona.pk)
    # File and row agree, and the pair (daily, per-call) comes from one writer, never mixed.
    assert (row.daily_cap_nanos, row.per_call_cap_nanos) == (
        final.daily_nanos,
        final.per_call_nanos,
    )
    assert final.per_call_nanos is not None
    assert final.daily_nanos == (final.per_call_nanos + 2) * USD
    # Every write was a change from the one before it, each audited against its predecessor.
    changes = list(BudgetChange.objects.order_by("id"))
    assert len(changes) == writers
    for previous, current in itertools.pairwise(changes):
        assert current.before == previous.after
    assert changes[-1].after == final.to_api()
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
