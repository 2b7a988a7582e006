"""Holds over HTTP (extension): reserve on check, count as spent, settle, release, expire.

A charge naming a hold is always recorded (the money is already spent); it settles the
hold only when the hold is this persona's and still active, and says so in its ``hold``.

The ``clock`` fixture fixes ``django.utils.timezone.now`` (where the budget services read
the time when the views pass no ``now``), so expiry is tested by moving the clock, never
by sleeping.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.utils import timezone as django_timezone
from rest_framework.test import APIClient

from budgets.ledger import mirror
from budgets.models import Charge, Hold
from budgets.services import budget_charge
from personas.models import Persona

pytestmark = pytest.mark.django_db

URL = "/api/agents/hermes/personas/coder/budget"
T0 = dt.datetime(2026, 5, 12, 9, 30, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(django_timezone, "now", lambda: c.now)
    return c


@pytest.fixture
def client() -> APIClient:
    return APIClient()


Committing = Callable[..., AbstractContextManager[Any]]


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Committing) -> Callable[[], Any]:
    """``with committed(): ...`` runs the after-commit callbacks (the mirror append) at the
    end of the block, as the real commit of the request would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def mirrored_request_ids(persona: Persona) -> list[str]:
    path = mirror.mirror_path(persona.agent_id, persona.slug)
    if not path.exists():
        return []
    return [json.loads(line)["request_id"] for line in path.read_bytes().splitlines()]


@pytest.fixture
def coder(make_persona: Callable[..., Persona]) -> Persona:
    """hermes/coder with a hard daily cap of 1 USD."""
    return make_persona("hermes", "coder", "daily_usd = 1.0\n")


def check(client: APIClient, estimate: Any, url: str = URL, **extra: Any) -> Any:
    return client.post(f"{url}/check", {"estimated_cost_usd": estimate, **extra}, format="json")


def reserve(client: APIClient, estimate: float, url: str = URL, **extra: Any) -> dict[str, Any]:
    response = check(client, estimate, url, reserve=True, **extra)
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    assert body["allowed"] is True, body
    hold: dict[str, Any] = body["hold"]
    return hold


def charge(client: APIClient, cost: float, request_id: str, url: str = URL, **extra: Any) -> Any:
    body = {"surface": "openrouter", "model": "m", "cost_usd": cost, "request_id": request_id}
    return client.post(f"{url}/charge", {**body, **extra}, format="json")


def release(client: APIClient, hold_id: str, url: str = URL) -> Any:
    return client.post(f"{url}/holds/{hold_id}/release")


def state(client: APIClient, url: str = URL) -> dict[str, Any]:
    out: dict[str, Any] = client.get(url).json()
    return out


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body: dict[str, Any] = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]


# --- reserve --------------------------------------------------------------------------------


def test_reserve_returns_a_hold_with_id_amount_and_expiry(
    client: APIClient, clock: Clock, coder: Persona
) -> None:
    response = check(client, 0.3, reserve=True)

    assert response.status_code == 200
    body = response.json()
    assert (body["allowed"], body["decision"], body["remaining_usd"]) == (
        True,
        "allow",
        {"daily": 1.0},
    )
    hold = body["hold"]
    assert set(hold) == {"id", "amount_usd", "expires_at"}
    assert hold["id"].startswith("hold_")
    assert hold["amount_usd"] == 0.3
    assert hold["expires_at"] == "2026-05-12T09:35:00+00:00"  # default hold_ttl_s = 300
    row = Hold.objects.get(pk=hold["id"])
    assert (row.persona_id, row.state, row.amount_nanos) == (coder.pk, "active", 300_000_000)


def test_hold_ttl_s_sets_the_expiry_and_the_default_comes_from_settings(
    client: APIClient, clock: Clock, coder: Persona, settings: Any
) -> None:
    assert reserve(client, 0.1, hold_ttl_s=60)["expires_at"] == "2026-05-12T09:31:00+00:00"
    assert reserve(client, 0.1, hold_ttl_s=86_400)["expires_at"] == "2026-05-13T09:30:00+00:00"
    assert reserve(client, 0.1, hold_ttl_s=1)["expires_at"] == "2026-05-12T09:30:01+00:00"
    assert reserve(client, 0.1, hold_ttl_s=120.0)["expires_at"] == "2026-05-12T09:32:00+00:00"
    settings.HAL0_HOLD_TTL_S = 45
    assert reserve(client, 0.1)["expires_at"] == "2026-05-12T09:30:45+00:00"


def test_each_reserve_takes_its_own_hold(client: APIClient, clock: Clock, coder: Persona) -> None:
    ids = {reserve(client, 0.1)["id"] for _ in range(3)}

    assert len(ids) == 3
    assert Hold.objects.filter(persona=coder, state="active").count() == 3


def test_a_check_without_reserve_takes_no_hold(
    client: APIClient, clock: Clock, coder: Persona
) -> None:
    response = check(client, 0.3, reserve=False, hold_ttl_s=60)

    assert response.status_code == 200
    assert "hold" not in response.json()
    assert not Hold.objects.exists()


# --- holds count as spent -------------------------------------------------------------------


def test_active_holds_count_in_later_checks_and_show_as_held_usd(
    client: APIClient, clock: Clock, coder: Persona
) -> None:
    reserve(client, 0.1)
    reserve(client, 0.2)

    later = check(client, 0.75).json()
    assert later["remaining_usd"] == {"daily": 0.7}
    assert (later["allowed"], later["limit"], later["decision"]) == (False, "daily", "block")
    assert check(client, 0.7).json()["allowed"] is True  # equal to the headroom: allowed
    got = state(client)
    assert got["held_usd"] == 0.3
    # GET's hal0 fields are about money spent: a hold is not spent.
    assert got["spend"] == {"today_usd": 0.0, "mtd_usd": 0.0, "lifetime_usd": 0.0}
    assert got["remaining"] == {"daily_usd": 1.0}


def test_a_hold_counts_against_every_window(
    client: APIClient, clock: Clock, make_persona: Callable[..., Persona]
) -> None:
    make_persona("hermes", "coder", "daily_usd = 10.0\nmonthly_usd = 1.0\nlifetime_usd = 5.0\n")
    reserve(client, 0.6)

    body = check(client, 0.5).json()

    assert body["remaining_usd"] == {"daily": 9.4, "monthly": 0.4, "lifetime": 4.4}
    assert (body["allowed"], body["limit"]) == (False, "monthly")


def test_a_reserve_that_is_not_allowed_creates_no_hold(
    client: APIClient, clock: Clock, make_persona: Callable[..., Persona]
) -> None:
    make_persona("hermes", "coder", "daily_usd = 1.0\nper_call_max_usd = 0.5\n")
    assert charge(client, 0.9, "spent").status_code == 200

    over_day = check(client, 0.3, reserve=True).json()
    over_call = check(client, 0.6, reserve=True).json()

    assert (over_day["allowed"], over_day["limit"]) == (False, "daily")
    assert (over_call["allowed"], over_call["limit"]) == (False, "per_call")
    assert "hold" not in over_day
    assert "hold" not in over_call
    assert not Hold.objects.exists()
    assert state(client)["held_usd"] == 0.0


def test_holds_fill_the_cap_and_then_the_next_reserve_is_refused(
    client: APIClient, clock: Clock, coder: Persona
) -> None:
    for _ in range(4):
        reserve(client, 0.25)

    refused = check(client, 0.01, reserve=True).json()

    assert (refused["allowed"], refused["remaining_usd"]) == (False, {"daily": 0.0})
    assert Hold.objects.count() == 4


def test_a_warn_only_budget_takes_a_hold_even_past_the_cap(
    client: APIClient, clock: Clock, make_persona: Callable[..., Persona]
) -> None:
    make_persona("hermes", "coder", "daily_usd = 1.0\nhard_cap = false\n")

    body = check(client, 1.5, reserve=True).json()

    assert (body["allowed"], body["decision"], body["limit"]) == (True, "warn", "daily")
    assert body["hold"]["amount_usd"] == 1.5
    assert state(client)["held_usd"] == 1.5


# --- expiry ---------------------------------------------------------------------------------


def test_a_hold_stops_counting_at_its_expiry(
    client: APIClient, clock: Clock, coder: Persona
) -> None:
    reserve(client, 0.4, hold_ttl_s=30)

    clock.advance(29.999)
    assert check(client, 0.0).json()["remaining_usd"] == {"daily": 0.6}
    assert state(client)["held_usd"] == 0.4
    clock.advance(0.001)  # exactly expires_at: no longer active
    assert check(client, 0.0).json()["remaining_usd"] == {"daily": 1.0}
    assert state(client)["held_usd"] == 0.0
    assert check(client, 1.0).json()["allowed"] is True


def test_an_expired_hold_can_still_be_released_once(
    client: APIClient, clock: Clock, coder: Persona
) -> None:
    hold = reserve(client, 0.4, hold_ttl_s=5)
    clock.advance(60)

    assert release(client, hold["id"]).json()["hold"]["state"] == "released"
    assert error_of(release(client, hold["id"]), 409)["code"] == "hold.resolved"


def test_a_charge_may_settle_a_hold_that_expired_and_is_recorded_in_full(
    client: APIClient, clock: Clock, coder: Persona
) -> None:
    hold = reserve(client, 0.4, hold_ttl_s=5)
    reserve(client, 0.1)  # another hold, still active
    clock.advance(60)

    response = charge(client, 0.45, "late", hold_id=hold["id"])

    assert response.status_code == 200
    body = response.json()
    assert body["spend"]["today_usd"] == 0.45
    assert body["held_usd"] == 0.1  # the expired hold was no longer counted anyway
    assert body["hold"] == {"id": hold["id"], "settled": True, "state": "settled"}
    assert Hold.objects.get(pk=hold["id"]).state == "settled"


# --- settle by charge -----------------------------------------------------------------------


@pytest.mark.parametrize(("estimate", "cost"), [(0.3, 0.42), (0.3, 0.1), (0.3, 0.3)])
def test_a_charge_with_hold_id_settles_the_hold_at_the_actual_cost(
    client: APIClient, clock: Clock, coder: Persona, estimate: float, cost: float
) -> None:
    hold = reserve(client, estimate)
    other = reserve(client, 0.05)

    response = charge(client, cost, "req-1", hold_id=hold["id"])

    assert response.status_code == 200
    body = response.json()
    assert body["recorded"] is True
    assert body["hold"] == {"id": hold["id"], "settled": True, "state": "settled"}
    assert body["held_usd"] == 0.05  # only the other hold is still reserved
    assert body["spend"]["today_usd"] == cost
    assert body["remaining"]["daily_usd"] == float(f"{1.0 - cost:.9f}")
    row = Charge.objects.get(request_id="req-1")
    assert row.hold_id == hold["id"]
    assert row.cost_nanos == round(cost * 1e9)
    settled = Hold.objects.get(pk=hold["id"])
    assert (settled.state, settled.resolved_at) == ("settled", T0)
    assert Hold.objects.get(pk=other["id"]).state == "active"
    after = check(client, 0.0).json()["remaining_usd"]["daily"]
    assert after == float(f"{1.0 - cost - 0.05:.9f}")


def test_a_charge_without_hold_id_answers_no_hold_key(
    client: APIClient, clock: Clock, coder: Persona
) -> None:
    reserve(client, 0.3)

    body = charge(client, 0.2, "req-1").json()

    assert "hold" not in body
    assert Charge.objects.get(request_id="req-1").hold_id is None
    assert Hold.objects.get().state == "active"


def test_a_second_charge_naming_a_settled_hold_is_recorded_and_leaves_the_hold_alone(
    client: APIClient, clock: Clock, coder: Persona, committed: Callable[[], Any]
) -> None:
    hold = reserve(client, 0.3)
    with committed():
        assert charge(client, 0.2, "req-1", hold_id=hold["id"]).status_code == 200
    clock.advance(5)

    with committed():
        response = charge(client, 0.15, "req-2", hold_id=hold["id"])

    assert response.status_code == 200
    body = response.json()
    assert body["recorded"] is True
    assert body["hold"] == {"id": hold["id"], "settled": False, "state": "settled"}
    assert body["spend"]["today_usd"] == 0.35  # both charges count
    assert body["held_usd"] == 0.0
    assert body["row"]["request_id"] == "req-2"
    # The hold is settled by the first charge only, and keeps the time it was settled.
    settled = Hold.objects.get(pk=hold["id"])
    assert (settled.state, settled.resolved_at) == ("settled", T0)
    rows = dict(Charge.objects.values_list("request_id", "hold_id"))
    assert rows == {"req-1": hold["id"], "req-2": None}
    assert mirrored_request_ids(coder) == ["req-1", "req-2"]
    assert state(client)["spend"]["today_usd"] == 0.35


def test_a_charge_naming_a_released_hold_is_recorded_and_the_hold_stays_released(
    client: APIClient, clock: Clock, coder: Persona, committed: Callable[[], Any]
) -> None:
    hold = reserve(client, 0.3)
    assert release(client, hold["id"]).status_code == 200
    clock.advance(5)

    with committed():
        response = charge(client, 0.25, "req-1", hold_id=hold["id"])

    assert response.status_code == 200
    body = response.json()
    assert body["hold"] == {"id": hold["id"], "settled": False, "state": "released"}
    assert (body["spend"]["today_usd"], body["held_usd"]) == (0.25, 0.0)
    released = Hold.objects.get(pk=hold["id"])
    assert (released.state, released.resolved_at) == ("released", T0)
    assert Charge.objects.get(request_id="req-1").hold_id is None
    assert mirrored_request_ids(coder) == ["req-1"]
    assert state(client)["spend"]["today_usd"] == 0.25
    assert error_of(release(client, hold["id"]), 409)["code"] == "hold.resolved"


@pytest.mark.parametrize("hold_id", ["hold_nope", "x", "h" * 64, "h" * 200])
def test_a_charge_naming_an_unknown_hold_is_recorded_and_says_not_found(
    client: APIClient, clock: Clock, coder: Persona, committed: Callable[[], Any], hold_id: str
) -> None:
    with committed():
        response = charge(client, 0.25, "req-1", hold_id=hold_id)

    assert response.status_code == 200
    body = response.json()
    # The id is echoed cut to 64 characters, as error details cut ids.
    assert body["hold"] == {"id": hold_id[:64], "settled": False, "state": "not_found"}
    assert body["spend"]["today_usd"] == 0.25
    assert Charge.objects.get(request_id="req-1").hold_id is None
    assert mirrored_request_ids(coder) == ["req-1"]
    assert not Hold.objects.exists()


@pytest.mark.parametrize("before", ["active", "settled", "released", "unknown"])
def test_a_replay_of_a_charge_with_hold_id_answers_byte_for_byte_with_its_hold(
    client: APIClient, clock: Clock, coder: Persona, before: str
) -> None:
    hold_id = "hold_unknown" if before == "unknown" else reserve(client, 0.3)["id"]
    if before == "settled":
        assert charge(client, 0.1, "settles", hold_id=hold_id).status_code == 200
    if before == "released":
        assert release(client, hold_id).status_code == 200
    first = charge(client, 0.2, "req-1", hold_id=hold_id)
    assert first.status_code == 200
    assert b'"hold":{"id":"' + hold_id.encode() + b'","settled":' in first.content
    clock.advance(10)

    again = charge(client, 0.2, "req-1", hold_id=hold_id)

    assert again.status_code == 200
    # Even when the first charge settled the hold (it reads "settled" by now), the replay
    # tells what the first charge did.
    assert again.content == first.content
    assert Charge.objects.filter(request_id="req-1").count() == 1


def test_the_service_echoes_at_most_64_characters_of_a_long_hold_id(
    clock: Clock, coder: Persona
) -> None:
    # The API refuses a hold_id over 200 characters; the service, which the admin and the
    # commands call too, never echoes more than 64 of whatever it is given.
    answer = budget_charge(
        persona=coder, surface="s", model="m", cost_nanos=1, request_id="r", hold_id="h" * 300
    )

    assert answer["hold"] == {"id": "h" * 64, "settled": False, "state": "not_found"}
    assert answer["recorded"] is True
    assert Charge.objects.get().request_id == "r"


def test_the_same_request_id_naming_another_hold_is_409_charge_conflict(
    client: APIClient, clock: Clock, coder: Persona
) -> None:
    hold = reserve(client, 0.3)
    other = reserve(client, 0.3)
    assert charge(client, 0.2, "req-1", hold_id=hold["id"]).status_code == 200

    error = error_of(charge(client, 0.2, "req-1", hold_id=other["id"]), 409)

    assert error["code"] == "charge.conflict"
    assert Hold.objects.get(pk=other["id"]).state == "active"
    assert Charge.objects.count() == 1


# --- release --------------------------------------------------------------------------------


def test_release_gives_the_reservation_back(
    client: APIClient, clock: Clock, coder: Persona
) -> None:
    hold = reserve(client, 0.6, hold_ttl_s=600)
    assert check(client, 0.5).json()["allowed"] is False
    clock.advance(5)

    response = release(client, hold["id"])

    assert response.status_code == 200
    assert response.json() == {
        "hold": {
            "id": hold["id"],
            "amount_usd": 0.6,
            "expires_at": "2026-05-12T09:40:00+00:00",
            "state": "released",
        }
    }
    row = Hold.objects.get(pk=hold["id"])
    assert (row.state, row.resolved_at) == ("released", T0 + dt.timedelta(seconds=5))
    assert state(client)["held_usd"] == 0.0
    assert check(client, 0.5).json()["allowed"] is True


def test_release_twice_is_409_hold_resolved(
    client: APIClient, clock: Clock, coder: Persona
) -> None:
    hold = reserve(client, 0.6)
    release(client, hold["id"])

    error = error_of(release(client, hold["id"]), 409)

    assert error["code"] == "hold.resolved"
    assert error["details"] == {"hold_id": hold["id"], "state": "released"}


def test_release_after_the_hold_was_settled_is_409_and_keeps_the_charge(
    client: APIClient, clock: Clock, coder: Persona
) -> None:
    hold = reserve(client, 0.6)
    charge(client, 0.5, "req-1", hold_id=hold["id"])

    error = error_of(release(client, hold["id"]), 409)

    assert (error["code"], error["details"]["state"]) == ("hold.resolved", "settled")
    assert Hold.objects.get(pk=hold["id"]).state == "settled"
    assert state(client)["spend"]["today_usd"] == 0.5


@pytest.mark.parametrize("hold_id", ["hold_unknown", "x", "h" * 300])
def test_release_of_an_unknown_hold_is_404_hold_not_found(
    client: APIClient, clock: Clock, coder: Persona, hold_id: str
) -> None:
    error = error_of(release(client, hold_id), 404)

    assert error["code"] == "hold.not_found"
    assert error["details"] == {"hold_id": hold_id[:64]}
    assert len(error["message"]) < 200


def test_release_on_an_unknown_persona_is_404_persona_not_found(
    client: APIClient, clock: Clock, coder: Persona
) -> None:
    hold = reserve(client, 0.6)

    error = error_of(release(client, hold["id"], "/api/agents/hermes/personas/ghost/budget"), 404)

    assert error["code"] == "persona.not_found"
    assert Hold.objects.get(pk=hold["id"]).state == "active"


def test_release_needs_post(client: APIClient, clock: Clock, coder: Persona) -> None:
    hold = reserve(client, 0.6)

    response = client.get(f"{URL}/holds/{hold['id']}/release")

    assert error_of(response, 405)["code"] == "request.method_not_allowed"
    assert Hold.objects.get(pk=hold["id"]).state == "active"


# --- another persona's hold -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("other_agent", "other_slug"),
    [
        ("hermes", "hermes"),  # same agent, another persona
        ("atlas", "coder"),  # same persona id, another agent
    ],
)
def test_a_hold_of_another_persona_reads_as_unknown_and_stays_active(
    client: APIClient,
    clock: Clock,
    coder: Persona,
    make_persona: Callable[..., Persona],
    committed: Callable[[], Any],
    other_agent: str,
    other_slug: str,
) -> None:
    other_persona = make_persona(other_agent, other_slug, "daily_usd = 1.0\n")
    other_url = f"/api/agents/{other_agent}/personas/{other_slug}/budget"
    hold = reserve(client, 0.6)

    released = error_of(release(client, hold["id"], other_url), 404)
    with committed():
        charged = charge(client, 0.5, "req-x", other_url, hold_id=hold["id"])
        unknown = charge(client, 0.5, "req-y", other_url, hold_id="hold_unknown")

    assert released["code"] == "hold.not_found"
    # Recorded on the persona of the URL; the answer says no more than for an unknown id.
    assert charged.status_code == unknown.status_code == 200
    assert charged.json()["hold"] == {"id": hold["id"], "settled": False, "state": "not_found"}
    assert unknown.json()["hold"] == {"id": "hold_unknown", "settled": False, "state": "not_found"}
    assert set(charged.json()) == set(unknown.json())
    assert charged.json()["spend"]["today_usd"] == 0.5
    row = Charge.objects.get(request_id="req-x")
    assert (row.persona_id, row.hold_id) == (other_persona.pk, None)
    assert mirrored_request_ids(other_persona) == ["req-x", "req-y"]
    # The hold's persona: untouched.
    untouched = Hold.objects.get(pk=hold["id"])
    assert (untouched.state, untouched.resolved_at) == ("active", None)
    assert not Charge.objects.filter(persona=coder).exists()
    assert mirrored_request_ids(coder) == []
    assert state(client)["held_usd"] == 0.6
    assert state(client)["spend"]["today_usd"] == 0.0
    assert state(client, other_url)["held_usd"] == 0.0
    assert state(client, other_url)["spend"]["today_usd"] == 1.0


# --- invalid reserve / hold_ttl_s -----------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"reserve": "true"}, "reserve"),
        ({"reserve": 1}, "reserve"),
        ({"reserve": 0}, "reserve"),
        ({"reserve": None}, "reserve"),
        ({"reserve": True, "hold_ttl_s": 0}, "hold_ttl_s"),
        ({"reserve": True, "hold_ttl_s": -1}, "hold_ttl_s"),
        ({"reserve": True, "hold_ttl_s": 1.5}, "hold_ttl_s"),
        ({"reserve": True, "hold_ttl_s": "60"}, "hold_ttl_s"),
        ({"reserve": True, "hold_ttl_s": True}, "hold_ttl_s"),
        ({"reserve": True, "hold_ttl_s": 86_401}, "hold_ttl_s"),
        ({"reserve": True, "hold_ttl_s": [60]}, "hold_ttl_s"),
        ({"hold_ttl_s": 0}, "hold_ttl_s"),  # checked even without reserve
    ],
)
def test_an_invalid_reserve_or_hold_ttl_is_400_budget_invalid_hold(
    client: APIClient, clock: Clock, coder: Persona, extra: dict[str, Any], key: str
) -> None:
    error = error_of(check(client, 0.1, **extra), 400)

    assert error["code"] == "budget.invalid_hold"
    assert error["details"] == {"key": key}
    assert key in error["message"]
    assert not Hold.objects.exists()


@pytest.mark.parametrize("raw", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "86400.5"])
def test_a_non_finite_or_absurd_hold_ttl_is_400(
    client: APIClient, clock: Clock, coder: Persona, raw: str
) -> None:
    body = '{"estimated_cost_usd": 0.1, "reserve": true, "hold_ttl_s": ' + raw + "}"
    response = client.post(f"{URL}/check", body, content_type="application/json")

    assert error_of(response, 400) == {
        "code": "budget.invalid_hold",
        "message": "hold_ttl_s must be a whole number of seconds, 1 to 86400",
        "details": {"key": "hold_ttl_s"},
    }
    assert not Hold.objects.exists()


def test_a_ttl_with_a_huge_exponent_is_refused_before_it_is_turned_into_an_integer(
    client: APIClient, clock: Clock, coder: Persona
) -> None:
    body = '{"estimated_cost_usd": 0.1, "reserve": true, "hold_ttl_s": 9E+999999999999}'

    response = client.post(f"{URL}/check", body, content_type="application/json")

    assert error_of(response, 400)["code"] == "budget.invalid_hold"
    assert not Hold.objects.exists()


def test_the_ttl_limit_follows_the_setting_and_the_message_says_it(
    client: APIClient, clock: Clock, coder: Persona, settings: Any
) -> None:
    settings.HAL0_HOLD_TTL_MAX_S = 600

    error = error_of(check(client, 0.1, reserve=True, hold_ttl_s=601), 400)

    assert error["message"] == "hold_ttl_s must be a whole number of seconds, 1 to 600"
    assert reserve(client, 0.1, hold_ttl_s=600)["expires_at"] == "2026-05-12T09:40:00+00:00"


def test_the_estimate_is_validated_before_the_hold_fields(
    client: APIClient, clock: Clock, coder: Persona
) -> None:
    response = check(client, -1, reserve="yes", hold_ttl_s=0)

    assert error_of(response, 400)["code"] == "budget.invalid_estimate"
