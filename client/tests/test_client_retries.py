"""Safe retries and an unreachable service, through a proxy that drops answers on demand."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from client_support import FaultyProxy, LiveService, free_port

from hal0_client import ApiError, SpendClient, SpendUnavailable

Persona = Callable[..., str]
ClientFor = Callable[..., SpendClient]


def test_a_charge_retried_after_a_dropped_answer_records_once(
    service: LiveService, persona: Persona, client_for: ClientFor, proxy: FaultyProxy
) -> None:
    pid = persona("daily_usd = 1.0")
    spend = client_for(pid, base_url=proxy.base_url)
    proxy.drop_answer["/charge"] = 1

    with spend.guard(surface="s", model="m", estimated_cost_usd=0.1) as call:
        call.record(cost_usd=0.07, input_tokens=7, output_tokens=8)

    # The service recorded the first attempt; the retry (same body, same request_id)
    # was answered from the stored first answer.
    assert proxy.count("/charge") == 2
    assert call.charge is not None
    assert call.charge.hold_settled is True
    assert service.charges(pid) == [(call.request_id, 70_000_000, 7, 8, call.hold_id)]
    assert spend.budget().spend["today_usd"] == Decimal("0.07")


def test_a_reserve_retried_after_a_dropped_answer_takes_one_hold(
    service: LiveService, persona: Persona, client_for: ClientFor, proxy: FaultyProxy
) -> None:
    pid = persona("daily_usd = 1.0")
    spend = client_for(pid, base_url=proxy.base_url)
    proxy.drop_answer["/check"] = 1

    with spend.guard(surface="s", model="m", estimated_cost_usd=0.6) as call:
        # A second hold of 0.6 would not fit in the 1.0 cap next to the first: the retry
        # got the first hold back.
        assert spend.budget().held_usd == Decimal("0.6")
        call.record(cost_usd=0.5)

    assert proxy.count("/check") == 2
    assert service.holds(pid) == [(call.hold_id, "settled", call.request_id, 600_000_000)]


def test_a_release_retried_after_a_dropped_answer_counts_as_released(
    service: LiveService, persona: Persona, client_for: ClientFor, proxy: FaultyProxy
) -> None:
    pid = persona("daily_usd = 1.0")
    spend = client_for(pid, base_url=proxy.base_url)
    hold = spend.check(0.2, reserve=True).hold
    assert hold is not None
    proxy.drop_answer["/release"] = 1

    assert spend.release(hold.id).state == "released"
    assert proxy.count("/release") == 2
    assert service.holds(pid)[0][1] == "released"


def test_5xx_answers_are_retried(
    service: LiveService, persona: Persona, client_for: ClientFor, proxy: FaultyProxy
) -> None:
    pid = persona("daily_usd = 1.0")
    spend = client_for(pid, base_url=proxy.base_url, retries=3)
    proxy.fail_with["/charge"] = 2

    spend.charge(surface="s", model="m", cost_usd=0.01, request_id="req_5xx")

    assert proxy.count("/charge") == 3
    assert [row[0] for row in service.charges(pid)] == ["req_5xx"]


def test_retries_are_bounded(persona: Persona, client_for: ClientFor, proxy: FaultyProxy) -> None:
    spend = client_for(persona(""), base_url=proxy.base_url, retries=2)
    proxy.fail_with["/check"] = 10

    with pytest.raises(SpendUnavailable, match="after 3 attempt"):
        spend.check(0.01)
    assert proxy.count("/check") == 3


def test_a_4xx_is_never_retried(
    service: LiveService, persona: Persona, client_for: ClientFor, proxy: FaultyProxy
) -> None:
    pid = persona("")
    spend = client_for(pid, base_url=proxy.base_url)
    spend.charge(surface="s", model="m", cost_usd=0.01, request_id="req_4xx")

    with pytest.raises(ApiError) as conflict:
        spend.charge(surface="s", model="m", cost_usd=0.02, request_id="req_4xx")

    assert (conflict.value.status, conflict.value.code) == (409, "charge.conflict")
    assert proxy.count("/charge") == 2  # one each: the 409 was not retried


def test_a_wrong_key_is_an_api_error_not_unavailable(
    service: LiveService, persona: Persona
) -> None:
    spend = SpendClient(service.base_url, key="nope", agent="hermes", persona=persona(""))
    with pytest.raises(ApiError) as denied:
        spend.guard(surface="s", model="m", estimated_cost_usd=0.01).open()
    assert denied.value.code == "auth.invalid"


# ---------------------------------------------------------------------------------------
# on_unavailable


def test_block_raises_before_the_upstream_call_when_the_service_is_down(
    persona: Persona, client_for: ClientFor
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    spend = client_for(persona(""), base_url=nobody, retries=1)
    calls = 0

    guard = spend.guard(surface="s", model="m", estimated_cost_usd=0.01)
    with pytest.raises(SpendUnavailable), guard as call:  # noqa: PT012
        calls += 1
        call.record(cost_usd=0.01)

    assert calls == 0
    assert spend.pending == 0


def test_allow_lets_the_call_go_queues_its_charge_and_flush_sends_it(
    service: LiveService,
    persona: Persona,
    client_for: ClientFor,
    proxy: FaultyProxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pid = persona("daily_usd = 1.0")
    spend = client_for(pid, base_url=proxy.base_url, on_unavailable="allow", retries=1)
    proxy.down = True

    guard = spend.guard(surface="s", model="m", estimated_cost_usd=0.01)
    with caplog.at_level(logging.WARNING, logger="hal0_client"), guard as call:
        assert call.guarded is False
        assert call.hold is None
        call.record(cost_usd=0.03, input_tokens=1, output_tokens=2)

    assert "UNGUARDED" in caplog.text
    assert call.queued is True
    assert spend.pending == 1
    assert service.charges(pid) == []

    assert spend.flush() == 0  # still down: it stays queued
    assert spend.pending == 1

    proxy.down = False
    assert spend.flush() == 1
    assert spend.pending == 0
    assert service.charges(pid) == [(call.request_id, 30_000_000, 1, 2, None)]


def test_a_charge_that_cannot_be_sent_after_the_call_is_queued_whatever_the_policy(
    service: LiveService, persona: Persona, client_for: ClientFor, proxy: FaultyProxy
) -> None:
    pid = persona("daily_usd = 1.0")
    spend = client_for(pid, base_url=proxy.base_url, retries=1)  # on_unavailable="block"

    with spend.guard(surface="s", model="m", estimated_cost_usd=0.1) as call:
        call.record(cost_usd=0.04)
        proxy.down = True  # the service goes away during the upstream call

    assert spend.pending == 1
    proxy.down = False
    # The next guard sends the queued charge first, so its check sees that spend.
    with spend.guard(surface="s", model="m", estimated_cost_usd=0.1) as second:
        assert spend.pending == 0
        second.record(cost_usd=0.01)

    rows = service.charges(pid)
    assert rows == [
        (call.request_id, 40_000_000, None, None, call.hold_id),
        (second.request_id, 10_000_000, None, None, second.hold_id),
    ]


def test_the_queue_is_bounded_and_logs_what_it_drops(
    persona: Persona, client_for: ClientFor, caplog: pytest.LogCaptureFixture
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    spend = client_for(
        persona(""), base_url=nobody, on_unavailable="allow", retries=0, max_pending=2
    )
    with caplog.at_level(logging.ERROR, logger="hal0_client"):
        ids = []
        for _ in range(3):
            with spend.guard(surface="s", model="m", estimated_cost_usd=0.01) as call:
                call.record(cost_usd=0.01)
            ids.append(call.request_id)

    assert spend.pending == 2
    assert "the oldest is dropped" in caplog.text
    assert ids[0] in caplog.text


def test_a_redirect_is_refused_not_followed(persona: Persona, client_for: ClientFor) -> None:
    """A POST redirected by urllib would become a GET of another URL: never follow it."""
    seen: list[str] = []

    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(f"POST {self.path}")
            self.send_response(301)
            self.send_header("Location", "https://127.0.0.1:1" + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            seen.append(f"GET {self.path}")
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        spend = client_for(persona(""), base_url=f"http://127.0.0.1:{server.server_address[1]}")
        with pytest.raises(ApiError) as redirected:
            spend.check(0.01)
    finally:
        server.shutdown()
        server.server_close()
    assert (redirected.value.status, redirected.value.code) == (301, "request.redirected")
    assert [s.split(" ")[0] for s in seen] == ["POST"]
