"""A live spend service for the client's tests, and the network faults they need.

``LiveService`` runs the real service (gunicorn, the project's settings, a real database:
SQLite in a temp folder, or a throwaway PostgreSQL database ``hal0_client_<pid>`` when
the suite runs with a PostgreSQL ``DATABASE_URL``) on a free port. ``FaultyProxy`` sits
between a client and it and drops answers or connections on demand. ``StandInUpstream``
speaks enough of the chat-completions API for the official ``openai`` SDK.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]  # the repository: manage.py, hal0/, client/


def run_async(main: Callable[[], Awaitable[T]]) -> T:
    """``asyncio.run(main())`` in a thread of its own: the browser tests of the same run
    leave an event loop running in the main thread (Playwright's sync API)."""
    results: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        async def wrapped() -> T:
            return await main()

        try:
            results.append(asyncio.run(wrapped()))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return results[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_url() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else None


class LiveService:
    """The real service in a subprocess; ``stop()`` ends it and drops what it made."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.data_dir = tmp / "data"
        self.data_dir.mkdir()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._pg_admin = _postgres_url()
        self._pg_db = f"hal0_client_{os.getpid()}"
        if self._pg_admin is not None:
            self._pg_execute(f"DROP DATABASE IF EXISTS {self._pg_db}")
            self._pg_execute(f"CREATE DATABASE {self._pg_db}")
            parts = urllib.parse.urlsplit(self._pg_admin)
            self.database_url = urllib.parse.urlunsplit(parts._replace(path=f"/{self._pg_db}"))
        else:
            self.database_url = f"sqlite:///{tmp / 'hal0.sqlite3'}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
            "DATABASE_URL": self.database_url,
            "HAL0_DATA_DIR": str(self.data_dir),
            "HAL0_VAR_DIR": str(tmp / "var"),
            "DEBUG": "false",
            "SECRET_KEY": "client-tests-only",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "HAL0_REQUIRE_API_KEY": "true",
            "LOG_LEVEL": "WARNING",
        }
        self._manage("migrate", "--no-input", "-v0")
        self._manage("reprovision", "hermes")
        self.operator_key = self._key("--operator")
        self.agent_key = self._key("--agent", "hermes")
        self._log = (tmp / "server.log").open("w")
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "hal0.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                "1",
                "--threads",
                "8",
                "--timeout",
                "60",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_up()

    def _manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    def _key(self, *args: str) -> str:
        # The command prints the key as the last word of its last line.
        return self._manage("apikey", "create", *args).strip().splitlines()[-1].split()[-1]

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the service exited: {self.log()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=1),
            ):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the service did not start: {self.log()}")

    def log(self) -> str:
        path = self.tmp / "server.log"
        return path.read_text()[-4000:] if path.exists() else ""

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._log.close()
        if self._pg_admin is not None:
            self._pg_execute(f"DROP DATABASE IF EXISTS {self._pg_db} WITH (FORCE)")

    def _pg_execute(self, statement: str) -> None:
        import psycopg

        assert self._pg_admin is not None
        # Through the maintenance database: the suite's own may not exist yet.
        parts = urllib.parse.urlsplit(self._pg_admin)
        admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(statement)

    # -----------------------------------------------------------------------------------

    def persona(self, persona_id: str, budget_toml: str = "") -> str:
        """Writes hermes/<persona_id>'s file (as an operator would); the service picks it
        up on its next request. Returns the id."""
        path = self.data_dir / "agents" / "hermes" / "personas" / f"{persona_id}.toml"
        path.write_text(
            "[persona]\n"
            f'id = "{persona_id}"\n'
            f'display_name = "{persona_id}"\n'
            'summary = "A persona of the client tests."\n\n'
            f"[persona.budget]\n{budget_toml}\n"
        )
        return persona_id

    def rows(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows from the service's database (``%s`` placeholders)."""
        if self._pg_admin is not None:
            import psycopg

            with psycopg.connect(self.database_url) as conn:
                return list(conn.execute(query, params).fetchall())
        lite = sqlite3.connect(self.tmp / "hal0.sqlite3")
        try:
            return list(lite.execute(query.replace("%s", "?"), params).fetchall())
        finally:
            lite.close()

    def charges(self, persona_id: str) -> list[tuple[Any, ...]]:
        """(request_id, cost_nanos, input_tokens, output_tokens, hold_id) per charge."""
        return self.rows(
            "SELECT c.request_id, c.cost_nanos, c.input_tokens, c.output_tokens, c.hold_id "
            "FROM budgets_charge c JOIN personas_persona p ON p.id = c.persona_id "
            "WHERE p.agent_id = %s AND p.slug = %s ORDER BY c.id",
            "hermes",
            persona_id,
        )

    def holds(self, persona_id: str) -> list[tuple[Any, ...]]:
        """(id, state, request_id, amount_nanos) per hold."""
        return self.rows(
            "SELECT h.id, h.state, h.request_id, h.amount_nanos "
            "FROM budgets_hold h JOIN personas_persona p ON p.id = h.persona_id "
            "WHERE p.agent_id = %s AND p.slug = %s ORDER BY h.created_at",
            "hermes",
            persona_id,
        )


# ---------------------------------------------------------------------------------------
# network faults


@dataclass
class FaultyProxy:
    """A TCP proxy in front of the service that misbehaves on demand.

    ``drop_answer["/charge"] = 1``: forward the next request whose path contains
    ``/charge``, let the service answer, and close the client's connection without
    passing the answer on (the client cannot tell whether it was done).
    ``fail_with[...] = n``: answer the next n matching requests with a 503 of its own.
    ``down = True``: close every connection at once, forwarding nothing.
    ``seen`` lists the paths that reached the proxy, in order.
    """

    target_port: int
    drop_answer: dict[str, int] = field(default_factory=dict)
    fail_with: dict[str, int] = field(default_factory=dict)
    down: bool = False
    seen: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = int(self._sock.getsockname()[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._stopped = False
        threading.Thread(target=self._serve, daemon=True).start()

    def count(self, fragment: str) -> int:
        return sum(fragment in path for path in self.seen)

    def close(self) -> None:
        self._stopped = True
        self._sock.close()

    def _serve(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _take(self, rules: dict[str, int], path: str) -> bool:
        with self._lock:
            for fragment, left in rules.items():
                if left > 0 and fragment in path:
                    rules[fragment] = left - 1
                    return True
        return False

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            if self.down:
                return
            request = _read_request(conn)
            if request is None:
                return
            path = request.split(b" ", 2)[1].decode()
            with self._lock:
                self.seen.append(path)
            if self._take(self.fail_with, path):
                body = b'{"error":{"code":"unavailable","message":"proxy","details":{}}}'
                conn.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n"
                    b"Connection: close\r\n\r\n" + body
                )
                return
            with socket.create_connection(("127.0.0.1", self.target_port)) as upstream:
                upstream.sendall(request)
                answer = _read_all(upstream)
            if self._take(self.drop_answer, path):
                return  # the service did it; the client never hears
            conn.sendall(answer)


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    # One request per connection: the service closes after answering.
    lines = [
        line
        for line in head.split(b"\r\n")
        if not line.lower().startswith((b"connection:", b"keep-alive:"))
    ]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + body


def _read_all(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


# ---------------------------------------------------------------------------------------
# a stand-in upstream LLM


class StandInUpstream:
    """A local server that speaks OpenAI chat completions (plain and streamed).

    Answers every request with ``reply`` and the usage given; ``cost`` (USD) is added to
    the usage as OpenRouter reports it. ``requests`` keeps the bodies it was sent.
    """

    def __init__(
        self,
        *,
        prompt_tokens: int = 1200,
        completion_tokens: int = 345,
        cached_tokens: int = 0,
        cost: float | None = None,
        reply: str = "Paris.",
    ) -> None:
        self.requests: list[dict[str, Any]] = []
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens},
        }
        if cost is not None:
            usage["cost"] = cost
        self.usage = usage
        self.reply = reply
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                upstream.requests.append(body)
                if body.get("stream"):
                    self._stream(body)
                else:
                    self._send(200, upstream.completion(body))

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                for chunk in upstream.chunks(body):
                    self.wfile.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                self.wfile.write(b"data: [DONE]\n\n")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": "chatcmpl-standin",
            "object": "chat.completion",
            "created": 1_764_000_000,
            "model": body.get("model", "stand-in"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": self.reply},
                    "finish_reason": "stop",
                    "logprobs": None,
                }
            ],
            "usage": self.usage,
        }

    def chunks(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        base = {
            "id": "chatcmpl-standin",
            "object": "chat.completion.chunk",
            "created": 1_764_000_000,
            "model": body.get("model", "stand-in"),
        }
        for word in self.reply.split(" "):
            yield {
                **base,
                "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}],
                "usage": None,
            }
        yield {
            **base,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": None,
        }
        if (body.get("stream_options") or {}).get("include_usage"):
            yield {**base, "choices": [], "usage": self.usage}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
