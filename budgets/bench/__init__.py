"""``manage.py bench``: latency, throughput and a scan baseline on throwaway databases.

The command (``budgets/management/commands/bench.py``) only parses options and writes the
report. The work happens in a child process per database (:mod:`budgets.bench.child`)
whose settings point at a throwaway SQLite file or PostgreSQL database and a temporary
data folder, so a run never touches ``var/`` or a real database:

- :mod:`~budgets.bench.ledger`: the bench persona and its ledger, loaded through the one
  charge writer (so the JSONL mirror holds every row too);
- :mod:`~budgets.bench.scan`: the file-only baseline (re-read the mirror on each check);
- :mod:`~budgets.bench.inprocess`: service-call latencies, the way the API views call them;
- :mod:`~budgets.bench.http`: gunicorn on 127.0.0.1, single-client latencies, throughput
  with wrk (or a multi-process Python client), worker RSS;
- :mod:`~budgets.bench.databases`: the throwaway databases;
- :mod:`~budgets.bench.report`: the markdown table for ``docs/benchmarks.md``.
"""
