"""``manage.py ledger repair``: cut torn lines, append what is missing, touch nothing else."""

from __future__ import annotations

import io
import json
import multiprocessing
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from budgets.ledger import mirror, reconcile
from budgets.models import Charge
from tests.budgets.ledger_support import make_persona, path_of, record

pytestmark = pytest.mark.django_db


def repair(*args: str) -> str:
    out = io.StringIO()
    call_command("ledger", "repair", *args, stdout=out)
    return out.getvalue()


def repair_failing(*args: str) -> tuple[str, str]:
    """A repair that leaves differences behind: its output and the error it exits with."""
    out = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("ledger", "repair", *args, stdout=out)
    return out.getvalue(), str(excinfo.value)


def verify_ok() -> bool:
    return all(r.ok for r in reconcile.verify(reconcile.personas_for()))


def record_with_mirror_blocked(data_dir: Path, persona: object, n: int) -> list[Charge]:
    folder = path_of(persona).parent  # type: ignore[arg-type]
    saved = folder.with_name(folder.name + ".saved")
    if folder.exists():
        folder.rename(saved)
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.write_text("in the way")
    try:
        return record(persona, n)  # type: ignore[arg-type]
    finally:
        folder.unlink()
        if saved.exists():
            saved.rename(folder)


def test_it_fills_the_gap_a_failed_append_left_and_verify_then_passes(data_dir: Path) -> None:
    persona = make_persona()
    before = record(persona, 2)
    lost = record_with_mirror_blocked(data_dir, persona, 3)
    after = record(persona, 1)
    assert not verify_ok()

    out = repair()

    assert "hermes/coder: appended 3 missing" in out
    assert "repair: repaired 1, unchanged 0" in out
    seqs = [ln.seq for ln in mirror.read_lines(path_of(persona))]
    # What was there stays first; the missing lines follow in seq order.
    assert seqs == [c.pk for c in before + after + lost]
    assert verify_ok()


def test_it_creates_the_mirror_when_every_append_failed(data_dir: Path) -> None:
    persona = make_persona()
    lost = record_with_mirror_blocked(data_dir, persona, 2)

    repair()

    assert [ln.seq for ln in mirror.read_lines(path_of(persona))] == [c.pk for c in lost]
    assert verify_ok()


def test_a_second_repair_changes_nothing(data_dir: Path) -> None:
    persona = make_persona()
    record_with_mirror_blocked(data_dir, persona, 2)
    repair()
    snapshot = path_of(persona).read_bytes()

    out = repair()

    assert "hermes/coder: unchanged" in out
    assert "repair: repaired 0, unchanged 1" in out
    assert path_of(persona).read_bytes() == snapshot


def test_it_cuts_a_torn_tail_and_rewrites_that_charge_whole(data_dir: Path) -> None:
    persona = make_persona()
    charges = record(persona, 3)
    path = path_of(persona)
    full = path.read_bytes()
    path.write_bytes(full[:-25])

    out = repair()

    assert "cut the torn last line, appended 1 missing" in out
    assert path.read_bytes() == full  # the cut line is written again, byte for byte
    assert [ln.seq for ln in mirror.read_lines(path)] == [c.pk for c in charges]
    assert "unchanged" in repair()


def test_it_cuts_a_torn_fragment_a_later_append_stepped_over(data_dir: Path) -> None:
    persona = make_persona()
    first = record(persona, 1)
    path = path_of(persona)
    good = path.read_bytes()
    with path.open("ab") as fh:
        fh.write(b'{"seq":2,"ts":"2025-03')
    later = record(persona, 1)

    out = repair()

    assert "cut 1 fragment/duplicate lines" in out
    assert path.read_bytes().startswith(good)
    assert [ln.seq for ln in mirror.read_lines(path)] == [c.pk for c in first + later]
    assert all(ln.checksum_ok for ln in mirror.read_lines(path))
    assert verify_ok()


def test_it_drops_an_identical_duplicate_line(data_dir: Path) -> None:
    persona = make_persona()
    record(persona, 2)
    path = path_of(persona)
    first_line = path.read_bytes().splitlines(keepends=True)[0]
    with path.open("ab") as fh:
        fh.write(first_line)

    repair()

    assert path.read_bytes().count(first_line) == 1
    assert verify_ok()


def test_it_reports_but_never_rewrites_extra_or_mismatched_lines(data_dir: Path) -> None:
    persona = make_persona()
    [charge] = record(persona, 1, cost_nanos=420_000_000)
    path = path_of(persona)
    line = json.loads(path.read_bytes())
    line["cost_usd"] = 0.01
    wrong = mirror.encode_line(line)
    extra = mirror.encode_line({**line, "seq": charge.pk + 1000})
    path.write_bytes(wrong + extra)

    out, error = repair_failing()

    assert "hermes/coder: unchanged; left for an operator: 1 extra, 1 mismatched" in out
    assert "1 with extra or mismatched lines" in out
    assert error == (
        "repair: out of step with the database in 1 mirror: "
        "extra or mismatched lines are left for an operator"
    )
    assert path.read_bytes() == wrong + extra
    assert not verify_ok()
    # Run again: the same answer, the file untouched.
    assert repair_failing()[1] == error
    assert path.read_bytes() == wrong + extra


# --- repair racing real appends -------------------------------------------------------


APPENDS = 1000


def _append_lines(path: str, count: int) -> None:
    for n in range(count):
        line = mirror.encode_line({"seq": 10_000_000 + n, "writer": "service"})
        with mirror.locked(Path(path)) as fd:
            mirror.write_lines(fd, [line])


def test_appends_during_a_rewriting_repair_land_in_the_new_file(data_dir: Path) -> None:
    # Repair replaces the file to cut a fragment; a writer waiting for the lock must
    # notice and append to the new file, or its lines would vanish with the old one.
    persona = make_persona()
    record(persona, 50)
    path = path_of(persona)
    with path.open("ab") as fh:
        fh.write(b"garbage\n")
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_append_lines, args=(str(path), APPENDS))
    child.start()
    rewrites = 0
    refusals: list[str] = []
    while child.is_alive() or rewrites == 0:
        with path.open("ab") as fh:
            fh.write(b"garbage\n")
        try:
            repair()
        except CommandError as exc:
            refusals.append(str(exc))
        rewrites += 1
    child.join(timeout=120)
    assert child.exitcode == 0
    # The child's lines are no charges of this persona: extras, left in place and reported.
    assert all("out of step with the database" in text for text in refusals)

    lines = list(mirror.read_lines(path))
    service = [ln.obj["seq"] for ln in lines if ln.obj and ln.obj.get("writer") == "service"]
    assert service == [10_000_000 + n for n in range(APPENDS)]


def test_a_mirror_that_cannot_be_written_is_reported_and_fails_the_command(
    data_dir: Path,
) -> None:
    healthy = make_persona("hermes", "hermes")
    blocked = make_persona("hermes", "coder")
    record(healthy, 1)
    record_with_mirror_blocked(data_dir, blocked, 1)
    path_of(blocked).parent.parent.mkdir(parents=True, exist_ok=True)
    path_of(blocked).parent.write_text("still in the way")
    out = io.StringIO()

    with pytest.raises(CommandError, match="1 mirror could not be repaired"):
        call_command("ledger", "repair", stdout=out)

    assert "hermes/coder: cannot repair the mirror (File exists)" in out.getvalue()
    assert "hermes/hermes: unchanged" in out.getvalue()
    assert str(data_dir) not in out.getvalue()
