"""The JSONL mirror: line format, checksum, torn tails, failures and concurrent appends."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from budgets.ledger import mirror
from budgets.models import Charge
from tests.budgets.ledger_support import make_persona, path_of, record

pytestmark = pytest.mark.django_db


def documented_sum(obj: dict[str, object]) -> str:
    """The recipe from docs/ledger.md, written out independently of the module."""
    body = {k: v for k, v in obj.items() if k != "sum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def test_it_appends_one_compact_line_per_charge_with_hal0_keys_seq_and_checksum(
    data_dir: Path,
) -> None:
    persona = make_persona("hermes", "coder")
    [charge] = record(
        persona,
        ts=dt.datetime(2025, 3, 1, 23, 59, 30, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        cost_nanos=42_100_000,
        request_id="req_abc",
        input_tokens=1200,
        output_tokens=300,
    )

    path = data_dir / "agents" / "hermes" / "personas" / "coder" / "spend.jsonl"
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    assert raw.count(b"\n") == 1
    assert b" " not in raw.replace(b"claude-3.7-sonnet", b"")  # compact separators
    line = json.loads(raw)
    assert line == {
        "seq": charge.pk,
        "ts": "2025-03-01T21:59:30.123456+00:00",
        "agent_id": "hermes",
        "persona_id": "coder",
        "surface": "openrouter",
        "model": "anthropic/claude-3.7-sonnet",
        "cost_usd": 0.0421,
        "request_id": "req_abc",
        "input_tokens": 1200,
        "output_tokens": 300,
        "sum": documented_sum(line),
    }
    assert b'"cost_usd":0.0421,' in raw  # the exact decimal, not 0.042100000000000005


def test_it_writes_null_for_a_cost_never_reported_and_omits_unknown_tokens(
    data_dir: Path,
) -> None:
    persona = make_persona()
    record(persona, cost_nanos=None, input_tokens=None, output_tokens=None)

    line = json.loads(path_of(persona).read_bytes())
    assert line["cost_usd"] is None
    assert "input_tokens" not in line
    assert "output_tokens" not in line


def test_it_appends_in_seq_order_and_keeps_earlier_lines(data_dir: Path) -> None:
    persona = make_persona()
    first = record(persona, 2)
    second = record(persona, 3)

    seqs = [ln.seq for ln in mirror.read_lines(path_of(persona))]
    assert seqs == [c.pk for c in first + second]


def test_read_lines_flags_an_edited_line_as_a_bad_checksum(data_dir: Path) -> None:
    persona = make_persona()
    record(persona, 2, cost_nanos=1_000_000_000)
    path = path_of(persona)
    path.write_bytes(path.read_bytes().replace(b'"cost_usd":1.0,', b'"cost_usd":0.5,', 1))

    lines = list(mirror.read_lines(path))
    assert [ln.checksum_ok for ln in lines] == [False, True]
    assert lines[0].obj is not None
    assert lines[0].obj["cost_usd"] == 0.5


def test_read_lines_reports_a_torn_last_line(data_dir: Path) -> None:
    persona = make_persona()
    record(persona)
    path = path_of(persona)
    with path.open("ab") as fh:
        fh.write(b'{"seq":99,"ts":"2025-')

    lines = list(mirror.read_lines(path))
    assert [(ln.torn_tail, ln.obj is None) for ln in lines] == [(False, False), (True, True)]
    assert lines[1].number == 2
    assert lines[1].offset == len(path.read_bytes()) - len(b'{"seq":99,"ts":"2025-')


def test_it_never_glues_a_new_line_onto_a_torn_one(data_dir: Path) -> None:
    persona = make_persona()
    record(persona)
    path = path_of(persona)
    with path.open("ab") as fh:
        fh.write(b'{"seq":2,"ts":"20')
    [later] = record(persona)

    lines = list(mirror.read_lines(path))
    assert [ln.obj is None for ln in lines] == [False, True, False]
    assert lines[2].seq == later.pk
    assert lines[2].checksum_ok
    assert not lines[2].torn_tail


def test_a_failed_append_still_records_the_charge_and_logs_the_gap(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A file where the persona's folder should be: the append cannot create its file
    # (this holds for root too, unlike a read-only folder).
    persona = make_persona("hermes", "coder")
    blocker = data_dir / "agents" / "hermes" / "personas" / "coder"
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a folder")

    with caplog.at_level(logging.WARNING, logger="budgets.ledger.mirror"):
        charges = record(persona, 3)

    assert Charge.objects.filter(persona=persona).count() == 3
    assert blocker.read_text() == "not a folder"
    [message] = [r.getMessage() for r in caplog.records]
    assert "hermes/coder" in message
    assert f"seq {charges[0].pk}..{charges[-1].pk}" in message
    assert str(data_dir) not in message


def test_append_with_nothing_to_write_creates_no_file(data_dir: Path) -> None:
    mirror.append([])
    assert not (data_dir / "agents").exists()


@pytest.mark.parametrize(("agent_id", "persona_id"), [("..", "x"), ("a", "../b"), ("A", "b")])
def test_paths_are_built_only_from_valid_ids(agent_id: str, persona_id: str) -> None:
    with pytest.raises(mirror.MirrorPathError):
        mirror.mirror_path(agent_id, persona_id)


# --- two real processes appending to one file -------------------------------------------

LINES_PER_PROCESS = 400
BATCH = 4


def _append_many(path: str, writer: str) -> None:
    # Runs in a forked child: no database, just the mirror's lock and write path.
    # Large lines make any interleaving of two writers visible as broken JSON.
    padding = writer * 3000
    for i in range(0, LINES_PER_PROCESS, BATCH):
        lines = [
            mirror.encode_line({"seq": n, "writer": writer, "pad": padding})
            for n in range(i, i + BATCH)
        ]
        with mirror.locked(Path(path)) as fd:
            mirror.write_lines(fd, lines)


def test_two_processes_appending_at_once_never_interleave_lines(tmp_path: Path) -> None:
    path = tmp_path / "spend.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_append_many, args=(str(path), w)) for w in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]

    lines = list(mirror.read_lines(path))
    assert len(lines) == 2 * LINES_PER_PROCESS
    assert all(ln.obj is not None and ln.checksum_ok for ln in lines)
    for writer in "ab":
        own = [ln.obj["seq"] for ln in lines if ln.obj and ln.obj["writer"] == writer]
        assert own == list(range(LINES_PER_PROCESS))
    # Batches of one writer stay together: a lock is held for a whole append.
    writers = "".join(ln.obj["writer"] for ln in lines if ln.obj)
    runs = [len(r) for r in writers.replace("ab", "a b").replace("ba", "b a").split()]
    assert all(n % BATCH == 0 for n in runs)


def test_a_charge_through_the_api_is_200_and_recorded_when_the_mirror_cannot_be_written(
    data_dir: Path,
    make_persona: Any,
    api_client: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from budgets.ledger import reconcile

    persona = make_persona("hermes", "coder", "daily_usd = 10.0\n")
    folder = data_dir / "agents" / "hermes" / "personas" / "coder"
    folder.write_text("a file where the mirror's folder should be")
    url = "/api/agents/hermes/personas/coder/budget/charge"
    body = {"surface": "openrouter", "model": "m", "cost_usd": 0.42, "request_id": "req-1"}

    with django_capture_on_commit_callbacks(execute=True):
        response = api_client.post(url, body, format="json")

    assert response.status_code == 200
    assert response.json()["recorded"] is True
    assert response.json()["remaining"]["daily_usd"] == 9.58
    assert Charge.objects.filter(persona=persona, request_id="req-1").count() == 1
    [report] = reconcile.verify([persona])
    assert report.counts["missing"] == 1
    folder.unlink()
    assert reconcile.repair_persona(persona).appended == 1
    assert reconcile.verify([persona])[0].ok
