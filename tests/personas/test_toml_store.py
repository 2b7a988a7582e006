"""The TOML store: text -> BudgetSpec/PersonaSpec -> text. Pure code, real files."""

from __future__ import annotations

import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest

from personas.toml_store import (
    BudgetInvalid,
    BudgetSpec,
    PersonaMalformed,
    iana_timezones,
    is_known_timezone,
    parse_budget_mapping,
    parse_persona_text,
    render_budget,
    sha256_text,
    signature,
    write_atomic,
)

USD = 1_000_000_000

FULL = """\
# Operator notes at the top survive every write.
[persona]
id = "coder"   # must equal the file name
display_name = "Coder"
summary = "Cites file:line."

[persona.prompt]
system = \"\"\"
Be careful.
  Indented line kept.
\"\"\"

[persona.budget]
# caps in USD
daily_usd = 5.0          # resets 00:00 in `timezone`
monthly_usd = 50         # an int is fine
lifetime_usd = 500.0
per_call_max_usd = 0.10
hard_cap = true          # false = warn only
warn_at = 0.8
timezone = "Europe/Berlin"
team = "research"        # unknown key: kept

[persona.model]
preferred_upstream = "hal0"
preferred_model = ""
"""


def persona_text(budget_lines: str | None) -> str:
    text = '[persona]\nid = "coder"\ndisplay_name = "Coder"\n'
    if budget_lines is not None:
        text += "\n[persona.budget]\n" + budget_lines
    return text


# --- parsing ------------------------------------------------------------------------------


def test_it_parses_a_full_block_into_nanos_and_keeps_unknown_keys() -> None:
    spec = parse_persona_text(FULL, stem="coder")

    assert spec.id == "coder"
    assert spec.display_name == "Coder"
    assert spec.summary == "Cites file:line."
    assert spec.budget == BudgetSpec(
        daily_nanos=5 * USD,
        monthly_nanos=50 * USD,
        lifetime_nanos=500 * USD,
        per_call_nanos=100_000_000,
        hard_cap=True,
        warn_at=Decimal("0.8"),
        timezone="Europe/Berlin",
        extra={"team": "research"},
    )
    assert spec.preferred_upstream == "hal0"
    assert spec.system_prompt.startswith("Be careful.")


def test_to_api_gives_json_numbers_and_every_set_key() -> None:
    api = parse_persona_text(FULL, stem="coder").budget.to_api()

    assert api == {
        "daily_usd": 5.0,
        "monthly_usd": 50.0,
        "lifetime_usd": 500.0,
        "per_call_max_usd": 0.1,
        "hard_cap": True,
        "warn_at": 0.8,
        "timezone": "Europe/Berlin",
    }
    assert isinstance(api["monthly_usd"], float)  # 50 -> 50.0, as hal0 answers


def test_an_empty_block_means_no_caps_and_a_hard_cap() -> None:
    spec = parse_persona_text(persona_text(""), stem="coder")

    assert spec.budget == BudgetSpec()
    assert spec.budget.to_api() == {"hard_cap": True}


def test_a_missing_block_is_the_same_as_an_empty_one() -> None:
    assert parse_persona_text(persona_text(None), stem="coder").budget == BudgetSpec()


def test_a_warn_only_block_keeps_hard_cap_false() -> None:
    spec = parse_persona_text(persona_text("daily_usd = 1\nhard_cap = false\n"), stem="coder")

    assert spec.budget.to_api() == {"daily_usd": 1.0, "hard_cap": False}


def test_zero_is_a_real_cap_not_no_cap() -> None:
    spec = parse_persona_text(persona_text("daily_usd = 0\nper_call_max_usd = 0.0\n"), stem="coder")

    assert spec.budget.daily_nanos == 0
    assert spec.budget.per_call_nanos == 0
    assert spec.budget.to_api() == {"daily_usd": 0.0, "per_call_max_usd": 0.0, "hard_cap": True}


def test_decimal_caps_are_exact_in_nanos() -> None:
    spec = parse_persona_text(persona_text("daily_usd = 0.1\nmonthly_usd = 9.58\n"), stem="coder")

    assert spec.budget.daily_nanos == 100_000_000
    assert spec.budget.monthly_nanos == 9_580_000_000
    assert spec.budget.to_api()["monthly_usd"] == 9.58


# --- validation messages ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("mapping", "key", "message"),
    [
        ({"daily_usd": -1}, "daily_usd", "daily_usd must be >= 0"),
        ({"monthly_usd": -0.01}, "monthly_usd", "monthly_usd must be >= 0"),
        ({"lifetime_usd": "5"}, "lifetime_usd", "lifetime_usd must be a number"),
        ({"per_call_max_usd": True}, "per_call_max_usd", "per_call_max_usd must be a number"),
        ({"daily_usd": Decimal("NaN")}, "daily_usd", "daily_usd must be a finite number"),
        ({"daily_usd": float("inf")}, "daily_usd", "daily_usd must be a finite number"),
        ({"daily_usd": Decimal("-Infinity")}, "daily_usd", "daily_usd must be a finite number"),
        ({"daily_usd": [1]}, "daily_usd", "daily_usd must be a number"),
        ({"daily_usd": 2_000_000_000}, "daily_usd", "daily_usd must be at most 1000000000 USD"),
        ({"hard_cap": "yes"}, "hard_cap", "hard_cap must be true or false"),
        ({"hard_cap": 1}, "hard_cap", "hard_cap must be true or false"),
        ({"warn_at": 1.5}, "warn_at", "warn_at must be a number between 0 and 1"),
        ({"warn_at": 0}, "warn_at", "warn_at must be a number between 0 and 1"),
        ({"warn_at": -0.2}, "warn_at", "warn_at must be a number between 0 and 1"),
        ({"warn_at": "0.8"}, "warn_at", "warn_at must be a number between 0 and 1"),
        ({"warn_at": True}, "warn_at", "warn_at must be a number between 0 and 1"),
        ({"warn_at": Decimal("NaN")}, "warn_at", "warn_at must be a number between 0 and 1"),
        ({"warn_at": Decimal("0.12345")}, "warn_at", "warn_at must have at most 4 decimal places"),
        (
            {"timezone": "Mars/Base"},
            "timezone",
            "timezone 'Mars/Base' is not a known IANA time zone",
        ),
        (
            {"timezone": "../../etc/passwd"},
            "timezone",
            "timezone '../../etc/passwd' is not a known IANA time zone",
        ),
        ({"timezone": ""}, "timezone", "timezone '' is not a known IANA time zone"),
        (
            {"timezone": "Europe/" + "x" * 80},
            "timezone",
            f"timezone {'Europe/' + 'x' * 57 + '...'!r} is not a known IANA time zone",
        ),
        ({"timezone": 3}, "timezone", "timezone must be a string such as 'Europe/Berlin'"),
    ],
)
def test_every_invalid_value_is_refused_naming_the_key_and_why(
    mapping: dict[str, object], key: str, message: str
) -> None:
    with pytest.raises(BudgetInvalid) as caught:
        parse_budget_mapping(mapping)

    assert caught.value.key == key
    assert caught.value.message == message
    assert str(caught.value) == message


# Names the zone database may answer on a host without being an IANA zone a budget can
# mean the same everywhere (the host's own setting, a placeholder, alternative trees).
HOST_DEPENDENT_ZONES = ["localtime", "posixrules", "Factory", "right/UTC", "posix/Europe/Berlin"]


@pytest.mark.parametrize("name", HOST_DEPENDENT_ZONES)
def test_a_host_dependent_zone_name_is_refused_in_a_budget(name: str) -> None:
    with pytest.raises(BudgetInvalid) as caught:
        parse_budget_mapping({"timezone": name})

    assert caught.value.key == "timezone"
    assert caught.value.message == f"timezone {name!r} is not a known IANA time zone"


@pytest.mark.parametrize("name", HOST_DEPENDENT_ZONES)
def test_a_persona_file_with_a_host_dependent_zone_is_malformed(name: str) -> None:
    text = f'[persona]\nid = "coder"\n[persona.budget]\ntimezone = "{name}"\n'

    with pytest.raises(PersonaMalformed) as caught:
        parse_persona_text(text, stem="coder")

    assert f"timezone {name!r} is not a known IANA time zone" in caught.value.message


def test_every_offered_zone_is_an_iana_name_that_loads() -> None:
    zones = iana_timezones()

    assert {"UTC", "Europe/Berlin", "America/New_York"} <= zones
    assert zones.isdisjoint(HOST_DEPENDENT_ZONES)
    assert all(is_known_timezone(name) for name in sorted(zones)[:50])


def test_valid_edge_values_are_accepted() -> None:
    spec = parse_budget_mapping(
        {"warn_at": 1, "timezone": "UTC", "daily_usd": 1_000_000_000, "hard_cap": False}
    )

    assert spec.warn_at == Decimal(1)
    assert spec.timezone == "UTC"
    assert spec.daily_nanos == 1_000_000_000 * USD


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[persona\nid = 1", "TOML syntax error: "),
        ('title = "no persona"\n', "missing [persona] table"),
        ('persona = "flat"\n', "missing [persona] table"),
        ('[persona]\ndisplay_name = "X"\n', "[persona].id is missing"),
        ("[persona]\nid = 7\n", "[persona].id must be a non-empty string"),
        ('[persona]\nid = ""\n', "[persona].id must be a non-empty string"),
        (
            '[persona]\nid = "hermes"\n',
            "[persona].id 'hermes' does not match the file name 'coder.toml'",
        ),
        ('[persona]\nid = "coder"\ndisplay_name = 3\n', "[persona].display_name must be a string"),
        ('[persona]\nid = "coder"\nsummary = ["a"]\n', "[persona].summary must be a string"),
        (persona_text("daily_usd = -1\n"), "[persona.budget] daily_usd must be >= 0"),
        (persona_text("daily_usd = nan\n"), "[persona.budget] daily_usd must be a finite number"),
        (persona_text("daily_usd = inf\n"), "[persona.budget] daily_usd must be a finite number"),
        (persona_text('hard_cap = "no"\n'), "[persona.budget] hard_cap must be true or false"),
        ('[persona]\nid = "coder"\nbudget = 5\n', "[persona.budget] must be a table"),
    ],
)
def test_a_malformed_persona_says_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(PersonaMalformed) as caught:
        parse_persona_text(text, stem="coder")

    if message.startswith("TOML syntax error"):
        assert caught.value.message.startswith(message)
    else:
        assert caught.value.message == message


def test_a_syntax_error_message_has_the_line_but_no_path(tmp_path: Path) -> None:
    path = tmp_path / "coder.toml"
    path.write_text('[persona]\nid = "coder"\ndaily_usd = = 1\n')

    with pytest.raises(PersonaMalformed) as caught:
        parse_persona_text(path.read_text(), stem="coder")

    assert "line 3" in caught.value.message
    assert str(tmp_path) not in caught.value.message
    assert "/" not in caught.value.message


# --- rendering ------------------------------------------------------------------------------


def budget_section(text: str) -> str:
    start = text.index("[persona.budget]")
    end = text.index("[persona.model]")
    return text[start:end]


def test_a_round_trip_of_the_same_spec_changes_nothing() -> None:
    spec = parse_persona_text(FULL, stem="coder").budget

    assert render_budget(FULL, spec) == FULL


def test_changing_one_cap_touches_only_that_line() -> None:
    spec = parse_persona_text(FULL, stem="coder").budget
    changed = BudgetSpec(**{**spec.__dict__, "daily_nanos": 7_500_000_000})

    out = render_budget(FULL, changed)

    before, after = FULL.splitlines(), out.splitlines()
    assert len(before) == len(after)
    diff = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert diff == [
        (
            "daily_usd = 5.0          # resets 00:00 in `timezone`",
            "daily_usd = 7.5          # resets 00:00 in `timezone`",
        )
    ]
    assert parse_persona_text(out, stem="coder").budget == changed


def test_everything_outside_the_budget_block_is_kept_byte_for_byte() -> None:
    out = render_budget(FULL, BudgetSpec(daily_nanos=USD, hard_cap=False))

    head = FULL[: FULL.index("[persona.budget]")]
    tail = FULL[FULL.index("[persona.model]") :]
    assert out.startswith(head)
    assert out.endswith(tail)
    block = budget_section(out)
    assert "# caps in USD" in block
    assert 'team = "research"        # unknown key: kept' in block
    assert "monthly_usd" not in block  # unset cap: removed, not left behind
    assert "timezone =" not in block
    assert parse_persona_text(out, stem="coder").budget == BudgetSpec(
        daily_nanos=USD, hard_cap=False, extra={"team": "research"}
    )


@pytest.mark.parametrize(
    "spec",
    [
        BudgetSpec(
            daily_nanos=USD,
            monthly_nanos=20 * USD,
            lifetime_nanos=300 * USD,
            per_call_nanos=5 * USD // 100,
            warn_at=Decimal("0.9"),
            timezone="Asia/Tokyo",
        ),
        BudgetSpec(),
        BudgetSpec(daily_nanos=2 * USD, hard_cap=False),
        BudgetSpec(daily_nanos=0, monthly_nanos=0, lifetime_nanos=0, per_call_nanos=0),
    ],
    ids=["full", "empty", "warn-only", "explicit-zero"],
)
def test_every_kind_of_block_round_trips_and_keeps_the_rest_byte_for_byte(
    spec: BudgetSpec, tmp_path: Path
) -> None:
    path = tmp_path / "coder.toml"
    write_atomic(path, FULL)

    write_atomic(path, render_budget(path.read_text(), spec))
    out = path.read_text()

    head = FULL[: FULL.index("[persona.budget]\n# caps in USD\n")]
    assert out.startswith(head + "[persona.budget]\n# caps in USD\n")
    assert out.endswith(FULL[FULL.index("\n[persona.model]") :])
    assert 'team = "research"        # unknown key: kept\n' in out
    read_back = parse_persona_text(out, stem="coder")
    assert read_back.budget == BudgetSpec(**{**spec.__dict__, "extra": {"team": "research"}})
    # Written back unchanged, the file stays the same bytes.
    assert render_budget(out, read_back.budget) == out


def test_an_empty_spec_leaves_only_hard_cap_and_unknown_keys() -> None:
    out = render_budget(FULL, BudgetSpec())

    block = budget_section(out)
    keys = [line.split("=")[0].strip() for line in block.splitlines() if "=" in line]
    assert keys == ["hard_cap", "team"]
    assert parse_persona_text(out, stem="coder").budget.to_api() == {"hard_cap": True}


def test_warn_only_and_explicit_zero_round_trip() -> None:
    for spec in (
        BudgetSpec(hard_cap=False, daily_nanos=2 * USD),
        BudgetSpec(daily_nanos=0, monthly_nanos=0, lifetime_nanos=0, per_call_nanos=0),
        BudgetSpec(warn_at=Decimal("0.5"), timezone="America/New_York"),
        BudgetSpec(per_call_nanos=123_456_789),
    ):
        out = render_budget(persona_text(""), spec)
        assert parse_persona_text(out, stem="coder").budget == spec


def test_a_missing_budget_table_is_created_and_the_rest_kept() -> None:
    text = persona_text(None) + '\n[persona.model]\npreferred_model = "x"  # mine\n'

    out = render_budget(text, BudgetSpec(daily_nanos=USD))

    assert out.startswith(text)
    assert parse_persona_text(out, stem="coder").budget == BudgetSpec(daily_nanos=USD)


def test_a_value_the_file_already_holds_keeps_its_spelling() -> None:
    text = persona_text("daily_usd = 5     # five\nmonthly_usd = 1e2\n")

    out = render_budget(text, BudgetSpec(daily_nanos=5 * USD, monthly_nanos=100 * USD))

    assert "daily_usd = 5     # five" in out
    assert "monthly_usd = 1e2" in out


def test_a_file_with_windows_line_endings_keeps_them_on_every_line() -> None:
    text = FULL.replace("\n", "\r\n")
    spec = parse_persona_text(text, stem="coder").budget
    assert render_budget(text, spec) == text

    out = render_budget(text, BudgetSpec(**{**spec.__dict__, "daily_nanos": USD, "timezone": None}))

    assert "\n" not in out.replace("\r\n", "")
    assert out.replace("\r\n", "\n") == render_budget(
        FULL, BudgetSpec(**{**spec.__dict__, "daily_nanos": USD, "timezone": None})
    )
    added = render_budget(persona_text(None).replace("\n", "\r\n"), BudgetSpec(daily_nanos=USD))
    assert added.endswith("[persona.budget]\r\ndaily_usd = 1.0\r\nhard_cap = true\r\n")
    assert "\n" not in added.replace("\r\n", "")


def test_new_keys_are_appended_to_the_block() -> None:
    out = render_budget(persona_text("hard_cap = true\n"), BudgetSpec(lifetime_nanos=10 * USD))

    assert out.endswith("hard_cap = true\nlifetime_usd = 10.0\n")


# --- files --------------------------------------------------------------------------------


def test_write_atomic_replaces_the_file_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "personas" / "coder.toml"
    write_atomic(path, "one\n")
    path.chmod(0o640)

    write_atomic(path, "two\n")

    assert path.read_text() == "two\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["coder.toml"]
    assert path.stat().st_mode & 0o777 == 0o640  # the operator's permissions are kept


def test_write_atomic_fsyncs_the_file_before_the_rename_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real calls run; the spies only note what was synced, and in which order."""
    path = tmp_path / "coder.toml"
    path.write_text("old\n")
    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append((f"fsync {kind}", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str | Path, dst: str | Path) -> None:
        events.append(("rename", f"{Path(src).name} -> {Path(dst).name}"))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)

    write_atomic(path, "new\n")

    assert [kind for kind, _ in events] == ["fsync file", "rename", "fsync dir"]
    temp = Path(events[0][1])
    assert temp.parent == tmp_path  # same folder, so the rename is atomic
    assert temp.name.startswith(".coder.toml.")
    assert events[1][1] == f"{temp.name} -> coder.toml"
    assert events[2][1] == str(tmp_path)
    assert path.read_text() == "new\n"


def test_a_failed_write_leaves_the_old_file_whole_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "personas" / "coder.toml"
    path.parent.mkdir()
    path.write_text("old\n")

    with pytest.raises(UnicodeEncodeError):
        write_atomic(path, "new \ud800 text\n")  # a lone surrogate cannot be encoded

    assert path.read_text() == "old\n"
    assert [p.name for p in path.parent.iterdir()] == ["coder.toml"]


def test_a_write_that_must_not_overwrite_creates_a_file_but_never_replaces_one(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "personas"
    write_atomic(folder / "coder.toml", "seed\n", overwrite=False)
    assert (folder / "coder.toml").read_text() == "seed\n"
    (folder / "hermes.toml").write_text("the operator's\n")

    with pytest.raises(FileExistsError):
        write_atomic(folder / "hermes.toml", "seed\n", overwrite=False)

    assert (folder / "hermes.toml").read_text() == "the operator's\n"
    assert sorted(p.name for p in folder.iterdir()) == ["coder.toml", "hermes.toml"]


def test_the_signature_changes_when_the_file_is_replaced_or_grows(tmp_path: Path) -> None:
    path = tmp_path / "coder.toml"
    write_atomic(path, "a = 1\n")
    first = signature(path)

    assert signature(path) == first
    write_atomic(path, "a = 2\n")  # same size, new inode
    second = signature(path)
    assert second != first
    with path.open("a") as handle:  # an in-place edit
        handle.write("b = 3\n")
    assert signature(path) != second


def test_the_signature_sees_an_in_place_edit_of_the_same_size(tmp_path: Path) -> None:
    path = tmp_path / "coder.toml"
    path.write_text("a = 1\n")
    before = signature(path)
    stat = path.stat()

    path.write_text("a = 2\n")
    # An editor saves seconds later; make the mtime say so regardless of clock granularity.
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

    assert signature(path) != before


def test_sha256_text_is_the_hash_of_the_utf8_bytes() -> None:
    assert sha256_text("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
