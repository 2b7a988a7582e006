"""gunicorn on 127.0.0.1, single-client latencies, throughput and worker memory.

The server is the production setup: ``gunicorn hal0.wsgi`` with sync workers, started
with the throwaway settings of this bench process (its environment) on a free port and
stopped (its id, SIGTERM, then SIGKILL) when the block ends.

Latency is measured with one client and a raw socket (connect, send, read to EOF): sync
workers close the connection after every response, so every request pays its TCP
connect, as every client of such a server does. Throughput uses wrk when installed (a
Lua script gives every charge its own ``request_id``), else a multi-process Python client.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from django.conf import settings

CHECK_BODY = b'{"estimated_cost_usd": 0.01}'
# A check with tokens instead of dollars: the service prices it (budgets/bench/inprocess.py).
CHECK_PRICED_BODY = (
    b'{"surface": "openai", "model": "gpt-4o", "input_tokens": 1200, "max_output_tokens": 800}'
)
CHARGE_FIELDS = '"surface":"openrouter","model":"anthropic/claude-3.7-sonnet","cost_usd":0.004'
READY_TIMEOUT_S = 60.0


class BenchHttpError(RuntimeError):
    """The server did not start, or answered something other than 200."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Api:
    """Where the bench persona's budget API is, and the key to call it with."""

    port: int
    key: str
    agent_id: str
    persona_id: str  # checked
    charge_persona_id: str  # charged

    @property
    def base(self) -> str:
        return f"/api/agents/{self.agent_id}/personas/{self.persona_id}/budget"

    @property
    def charge_path(self) -> str:
        return f"/api/agents/{self.agent_id}/personas/{self.charge_persona_id}/budget/charge"

    def request(self, method: str, path: str, body: bytes = b"") -> bytes:
        head = (
            f"{method} {path} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{self.port}\r\n"
            f"Authorization: Bearer {self.key}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n"
        )
        return head.encode("ascii") + body


def roundtrip(port: int, raw: bytes) -> tuple[int, bytes]:
    """Send one request on a new connection, read the answer to EOF: (status, body)."""
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(raw)
        parts = []
        while chunk := s.recv(65536):
            parts.append(chunk)
    data = b"".join(parts)
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        status = 0
    return status, body


def call(api: Api, method: str, path: str, body: bytes = b"") -> dict[str, Any]:
    status, answer = roundtrip(api.port, api.request(method, path, body))
    if status != 200:
        raise BenchHttpError(f"{method} {path}: HTTP {status}: {answer[:300]!r}")
    result: dict[str, Any] = json.loads(answer)
    return result


def charge_body(request_id: str) -> bytes:
    return f'{{{CHARGE_FIELDS},"request_id":"{request_id}"}}'.encode()


# ---------------------------------------------------------------------------------------
# The server


class Gunicorn:
    """``with Gunicorn(workers=4) as server:`` serves this process's settings on a free port."""

    def __init__(
        self, *, workers: int, log_dir: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.workers = workers
        # The server's environment: this process's, unless a caller (a test) gives one.
        self.env = dict(os.environ if env is None else env)
        self.port = free_port()
        self.log_path = log_dir / f"gunicorn-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Gunicorn:
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "hal0.wsgi:application",
            # The production configuration (Prometheus multiprocess mode, docs/alerts.md).
            "--config",
            str(settings.BASE_DIR / "hal0" / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            "sync",
            "--log-level",
            "warning",
            "--timeout",
            "120",
        ]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
                command, cwd=settings.BASE_DIR, env=self.env, stdout=log, stderr=log
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchHttpError(f"gunicorn exited: {self.log_tail()}")
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                if len(self.worker_pids()) >= self.workers:
                    return
            time.sleep(0.1)
        raise BenchHttpError(f"gunicorn not ready after {READY_TIMEOUT_S:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)  # gunicorn's graceful stop; the workers follow
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def worker_pids(self) -> list[int]:
        """The master's children (the workers), from ``/proc``."""
        if self.proc is None:
            return []
        master = self.proc.pid
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # "pid (comm) state ppid ...": comm may hold spaces, so split after the ")".
            fields = stat.rpartition(")")[2].split()
            if len(fields) > 1 and int(fields[1]) == master:
                pids.append(int(entry.name))
        return sorted(pids)

    def peak_rss_kib(self) -> list[int]:
        """Each worker's peak resident memory (``VmHWM``), KiB."""
        peaks = []
        for pid in self.worker_pids():
            with contextlib.suppress(OSError):
                status = Path(f"/proc/{pid}/status").read_text()
                found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
                if found:
                    peaks.append(int(found.group(1)))
        return peaks


# ---------------------------------------------------------------------------------------
# Single-client latency


def measure(api: Api, kind: str, samples: int, *, warmup: int = 20) -> list[float]:
    """Seconds per request of ``kind`` (``check``, ``check_reserve``, ``charge``), one client."""
    tag = os.urandom(4).hex()
    out: list[float] = []
    for i in range(warmup + samples):
        if kind == "check":
            raw = api.request("POST", f"{api.base}/check", CHECK_BODY)
        elif kind == "check_reserve":
            raw = api.request(
                "POST", f"{api.base}/check", b'{"estimated_cost_usd": 0.01, "reserve": true}'
            )
        elif kind == "charge":
            raw = api.request("POST", api.charge_path, charge_body(f"http-{tag}-{i}"))
        else:
            raise ValueError(f"unknown kind {kind!r}")
        started = time.perf_counter()
        status, body = roundtrip(api.port, raw)
        elapsed = time.perf_counter() - started
        if status != 200:
            raise BenchHttpError(f"{kind}: HTTP {status}: {body[:300]!r}")
        if kind == "check_reserve":
            hold = json.loads(body)["hold"]["id"]
            call(api, "POST", f"{api.base}/holds/{hold}/release")  # untimed
        if i >= warmup:
            out.append(elapsed)
    return out


def priced_pair(api: Api, samples: int, *, warmup: int = 20) -> tuple[list[float], list[float]]:
    """Plain and priced checks alternating, one client: ``(plain, priced)`` seconds (see
    ``inprocess.priced_pair`` for why alternating)."""
    bodies = (CHECK_BODY, CHECK_PRICED_BODY)
    out: tuple[list[float], list[float]] = ([], [])
    for i in range(warmup + samples):
        for body, series in zip(bodies, out, strict=True):
            raw = api.request("POST", f"{api.base}/check", body)
            started = time.perf_counter()
            status, answer = roundtrip(api.port, raw)
            elapsed = time.perf_counter() - started
            if status != 200:
                raise BenchHttpError(f"check: HTTP {status}: {answer[:300]!r}")
            if i >= warmup:
                series.append(elapsed)
    return out


def _timed_request(api: Api, method: str, path: str, body: bytes) -> float:
    raw = api.request(method, path, body)
    started = time.perf_counter()
    status, answer = roundtrip(api.port, raw)
    elapsed = time.perf_counter() - started
    if status != 200:
        raise BenchHttpError(f"{method} {path}: HTTP {status}: {answer[:300]!r}")
    return elapsed


def scoped_blocks(
    api: Api, samples: int, set_caps: Callable[[bool], None], *, workers: int, block: int = 50
) -> dict[str, list[float]]:
    """Checks with persona caps only and with caps at three scopes, one client, in
    alternating blocks (``inprocess.scoped_blocks`` says why blocks): seconds per request
    for ``check_persona`` and ``check_scopes``."""
    out: dict[str, list[float]] = {"check_persona": [], "check_scopes": []}
    on = False
    try:
        while len(out["check_persona"]) < samples or len(out["check_scopes"]) < samples:
            set_caps(on)
            series = out["check_scopes" if on else "check_persona"]
            for _ in range(5 * workers):  # every worker reads the files' new signatures
                call(api, "POST", f"{api.base}/check", CHECK_BODY)
            for _ in range(min(block, samples - len(series))):
                series.append(_timed_request(api, "POST", f"{api.base}/check", CHECK_BODY))
            on = not on
    finally:
        set_caps(False)
    return out


def run_pairs(api: Api, run_id: str, samples: int, *, warmup: int = 20) -> dict[str, list[float]]:
    """Check and charge on the charged persona without and with ``run_id``, alternating
    request by request: seconds for ``check``, ``check_run``, ``charge``, ``charge_run``."""
    tag = os.urandom(4).hex()
    check_path = api.charge_path.removesuffix("/charge") + "/check"
    run_check = b'{"estimated_cost_usd": 0.01, "run_id": "' + run_id.encode() + b'"}'
    out: dict[str, list[float]] = {k: [] for k in ("check", "check_run", "charge", "charge_run")}
    for i in range(warmup + samples):
        charge_run = f'{{{CHARGE_FIELDS},"request_id":"http-run-{tag}-{i}","run_id":"{run_id}"}}'
        timings = {
            "check": _timed_request(api, "POST", check_path, CHECK_BODY),
            "check_run": _timed_request(api, "POST", check_path, run_check),
            "charge": _timed_request(
                api, "POST", api.charge_path, charge_body(f"http-norun-{tag}-{i}")
            ),
            "charge_run": _timed_request(api, "POST", api.charge_path, charge_run.encode()),
        }
        if i >= warmup:
            for name, elapsed in timings.items():
                out[name].append(elapsed)
    return out


# ---------------------------------------------------------------------------------------
# Throughput


@dataclass(frozen=True)
class Throughput:
    per_s: float
    ok: int
    failed: int  # non-200 answers and socket errors
    tool: str
    connections: int
    seconds: float


_WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
wrk.body = '%(check_body)s'
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
local counter = 0
local tag = "wrk"
function init(args)
  tag = args[1] or "wrk"
end
if "%(kind)s" == "charge" then
  request = function()
    counter = counter + 1
    local body = string.format('{%(charge_fields)s,"request_id":"%%s-%%d-%%d"}', tag, tid, counter)
    return wrk.format(nil, nil, nil, body)
  end
end
"""


_UNIT_S = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _wrk(api: Api, kind: str, *, seconds: float, connections: int, threads: int) -> Throughput:
    path = api.charge_path if kind == "charge" else f"{api.base}/check"
    script = _WRK_SCRIPT % {
        "key": api.key,
        "check_body": CHECK_BODY.decode(),
        "kind": kind,
        "charge_fields": CHARGE_FIELDS,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    try:
        wrk = shutil.which("wrk") or "wrk"
        done = subprocess.run(  # noqa: S603 - wrk with our own arguments
            [
                wrk,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "-s",
                fh.name,
                f"http://127.0.0.1:{api.port}{path}",
                "--",
                f"{kind}-{os.urandom(4).hex()}",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
    finally:
        os.unlink(fh.name)
    out = done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)\b", out)
    if done.returncode != 0 or rate is None or total is None:
        raise BenchHttpError(f"wrk failed ({done.returncode}): {out[-500:]} {done.stderr[-500:]}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    bad = int(non2xx.group(1)) if non2xx else 0
    requests = int(total.group(1))
    elapsed = float(total.group(2)) * _UNIT_S[total.group(3)]
    ok = requests - bad
    failed = bad + (sum(int(g) for g in errors.groups()) if errors else 0)
    return Throughput(
        per_s=ok / elapsed if elapsed else 0.0,
        ok=ok,
        failed=failed,
        tool="wrk",
        connections=connections,
        seconds=elapsed,
    )


def _client(args: tuple[Api, str, float, int]) -> tuple[int, int]:
    api, kind, deadline, number = args
    ok = failed = 0
    i = 0
    while time.monotonic() < deadline:
        i += 1
        if kind == "charge":
            request_id = f"py-{number}-{i}-{os.getpid()}"
            raw = api.request("POST", api.charge_path, charge_body(request_id))
        else:
            raw = api.request("POST", f"{api.base}/check", CHECK_BODY)
        try:
            status, _ = roundtrip(api.port, raw)
        except OSError:
            failed += 1
            continue
        if status == 200:
            ok += 1
        else:
            failed += 1
    return ok, failed


def _python_clients(api: Api, kind: str, *, seconds: float, connections: int) -> Throughput:
    # fork: the clients only use sockets, never the parent's database connection.
    ctx = multiprocessing.get_context("fork")
    started = time.monotonic()
    deadline = started + seconds
    with ctx.Pool(connections) as pool:
        results = pool.map(_client, [(api, kind, deadline, n) for n in range(connections)])
    elapsed = time.monotonic() - started
    ok = sum(r[0] for r in results)
    return Throughput(
        per_s=ok / elapsed,
        ok=ok,
        failed=sum(r[1] for r in results),
        tool="python",
        connections=connections,
        seconds=elapsed,
    )


def throughput(
    api: Api, kind: str, *, seconds: float, connections: int, tool: str = "auto"
) -> Throughput:
    """Requests/s of ``kind`` (``check`` or ``charge``) with ``connections`` busy clients."""
    if tool == "wrk" or (tool == "auto" and wrk_available()):
        return _wrk(
            api, kind, seconds=seconds, connections=connections, threads=min(2, connections)
        )
    return _python_clients(api, kind, seconds=seconds, connections=connections)


@contextlib.contextmanager
def serving(workers: int, log_dir: Path) -> Iterator[Gunicorn]:
    with Gunicorn(workers=workers, log_dir=log_dir) as server:
        yield server
