"""Authentication and key scopes, on views that use the project's default API settings.

The views below are stand-ins with the real API's URL shapes (the budget endpoints'
own tests cover what they return); what is under test here is the authentication and
permission layer every API view inherits from ``REST_FRAMEWORK``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.urls import path
from django.utils import timezone
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient
from rest_framework.views import APIView

from budgets.apikeys import create_key, revoke_key
from budgets.auth import actor_of, principal_of
from budgets.models import ApiKey
from personas.models import Agent

# --- stand-in views with the API's URL shapes --------------------------------------------


class AgentsView(APIView):
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        assert principal is not None
        ids = [a for a in Agent.objects.values_list("id", flat=True) if principal.may_see_agent(a)]
        return Response({"agents": ids})


class EchoView(APIView):
    """Answers with who called; reads the body only once authorised (as real views do)."""

    def _answer(self, request: Request, **kwargs: Any) -> Response:
        return Response({"actor": actor_of(request), "kwargs": kwargs, "body": request.data})

    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response({"actor": actor_of(request), "kwargs": kwargs})

    post = put = _answer


BASE = "api/agents/<str:agent_id>/personas/<str:persona_id>/budget"
urlpatterns = [
    path("api/agents", AgentsView.as_view()),
    path("api/agents/<str:agent_id>/personas/<str:persona_id>", EchoView.as_view()),
    path(BASE, EchoView.as_view()),
    path(f"{BASE}/check", EchoView.as_view()),
    path(f"{BASE}/charge", EchoView.as_view()),
    path(f"{BASE}/holds/<str:hold_id>/release", EchoView.as_view()),
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def budget(agent: str) -> str:
    return f"/api/agents/{agent}/personas/coder/budget"


# (method, url builder, body) for every endpoint an agent key may use on its own agent.
AGENT_CALLS = [
    ("get", lambda a: f"/api/agents/{a}/personas/coder", None),
    ("get", budget, None),
    ("post", lambda a: budget(a) + "/check", {"estimated_cost_usd": 0.05}),
    (
        "post",
        lambda a: budget(a) + "/charge",
        {"surface": "s", "model": "m", "cost_usd": 0.01, "request_id": "r"},
    ),
    ("post", lambda a: budget(a) + "/holds/h_1/release", {}),
]
ALL_CALLS = [*AGENT_CALLS, ("put", budget, {"daily_usd": 1.0})]


@pytest.fixture(autouse=True)
def keys_required(settings: Any) -> None:
    settings.HAL0_REQUIRE_API_KEY = True


@pytest.fixture
def agents() -> None:
    Agent.objects.create(id="hermes")
    Agent.objects.create(id="other")


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def call(client: APIClient, method: str, url: str, body: Any) -> Any:
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body, format="json")


def error_code(response: Any) -> str:
    code: str = response.json()["error"]["code"]
    return code


# --- 401 --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "body"), [*ALL_CALLS, ("get", lambda a: "/api/agents", None)]
)
def test_no_key_is_401_auth_missing_everywhere(method: str, url: Any, body: Any) -> None:
    response = call(APIClient(), method, url("hermes"), body)

    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "code": "auth.missing",
            "message": response.json()["error"]["message"],
            "details": {},
        }
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_no_key_is_401_before_the_body_is_looked_at() -> None:
    response = APIClient().generic(
        "POST", budget("hermes") + "/check", "{not json", content_type="application/json"
    )
    assert response.status_code == 401
    assert error_code(response) == "auth.missing"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer nosuchpx.secretsecretsecretsecretsecret",
        "Bearer not-a-key",
        "Bearer",
        "Bearer two words",
        "Basic dXNlcjpwYXNz",
    ],
)
def test_a_wrong_or_malformed_key_is_401_auth_invalid(header: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(budget("hermes"))

    assert response.status_code == 401
    assert error_code(response) == "auth.invalid"


def test_a_key_with_a_right_prefix_but_wrong_secret_is_401(agents: None) -> None:
    _, raw = create_key(scope="operator")
    prefix = raw.split(".")[0]

    response = bearer(f"{prefix}.{'x' * 32}").get(budget("hermes"))

    assert response.status_code == 401
    assert error_code(response) == "auth.invalid"


def test_a_revoked_key_is_401_auth_invalid(agents: None) -> None:
    key, raw = create_key(scope="operator")
    assert bearer(raw).get(budget("hermes")).status_code == 200
    revoke_key(key.prefix)

    response = bearer(raw).get(budget("hermes"))

    assert response.status_code == 401
    assert error_code(response) == "auth.invalid"


def test_an_expired_key_is_401_auth_invalid(agents: None) -> None:
    key, raw = create_key(scope="agent", agent_id="hermes")
    ApiKey.objects.filter(pk=key.pk).update(expiry_date=timezone.now() - dt.timedelta(seconds=1))

    response = bearer(raw).get(budget("hermes"))

    assert response.status_code == 401
    assert error_code(response) == "auth.invalid"


# --- operator keys ------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "url", "body"), ALL_CALLS)
def test_an_operator_key_may_do_everything_on_every_agent(
    agents: None, method: str, url: Any, body: Any
) -> None:
    key, raw = create_key(scope="operator", name="ops")
    client = bearer(raw)
    for agent in ("hermes", "other"):
        response = call(client, method, url(agent), body)
        assert response.status_code == 200, response.content
        assert response.json()["actor"] == f"key:{key.prefix} (ops)"


def test_an_operator_key_lists_every_agent(agents: None) -> None:
    _, raw = create_key(scope="operator")
    assert bearer(raw).get("/api/agents").json() == {"agents": ["hermes", "other"]}


# --- agent keys ---------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "url", "body"), AGENT_CALLS)
def test_an_agent_key_may_read_check_charge_and_release_on_its_own_agent(
    agents: None, method: str, url: Any, body: Any
) -> None:
    _, raw = create_key(scope="agent", agent_id="hermes")

    response = call(bearer(raw), method, url("hermes"), body)

    assert response.status_code == 200, response.content


def test_an_agent_key_may_not_change_a_budget(agents: None) -> None:
    _, raw = create_key(scope="agent", agent_id="hermes")

    response = bearer(raw).put(budget("hermes"), {"daily_usd": 100.0}, format="json")

    assert response.status_code == 403
    assert error_code(response) == "auth.forbidden"


@pytest.mark.parametrize(("method", "url", "body"), ALL_CALLS)
def test_another_agents_urls_answer_404_exactly_like_an_agent_that_does_not_exist(
    agents: None, method: str, url: Any, body: Any
) -> None:
    _, raw = create_key(scope="agent", agent_id="hermes")
    client = bearer(raw)

    foreign = call(client, method, url("other"), body)
    missing = call(client, method, url("ghost"), body)

    assert foreign.status_code == 404
    assert error_code(foreign) == "agent.unknown"
    assert foreign.json()["error"]["details"] == {"agent_id": "other"}
    assert missing.status_code == 404
    # Nothing but the id in the URL tells the two apart.
    assert foreign.content.replace(b"other", b"X") == missing.content.replace(b"ghost", b"X")


def test_an_agent_key_lists_only_its_own_agent(agents: None) -> None:
    _, raw = create_key(scope="agent", agent_id="hermes")
    assert bearer(raw).get("/api/agents").json() == {"agents": ["hermes"]}


# --- open local setup ----------------------------------------------------------------------


def test_without_required_keys_an_anonymous_call_acts_as_operator(
    agents: None, settings: Any
) -> None:
    settings.HAL0_REQUIRE_API_KEY = False

    response = APIClient().put(budget("other"), {"daily_usd": 1.0}, format="json")

    assert response.status_code == 200
    assert response.json()["actor"] == "anonymous (HAL0_REQUIRE_API_KEY off)"


def test_without_required_keys_a_sent_key_is_still_checked_and_scoped(
    agents: None, settings: Any
) -> None:
    settings.HAL0_REQUIRE_API_KEY = False
    _, raw = create_key(scope="agent", agent_id="hermes")

    assert bearer("nosuchpx.whatever").get(budget("hermes")).status_code == 401
    assert bearer(raw).get(budget("other")).status_code == 404
    assert bearer(raw).put(budget("hermes"), {}, format="json").status_code == 403


# --- last used --------------------------------------------------------------------------


def test_last_used_is_written_at_most_once_a_minute(agents: None) -> None:
    key, raw = create_key(scope="agent", agent_id="hermes")
    client = bearer(raw)

    client.get(budget("hermes"))
    first = ApiKey.objects.get(pk=key.pk).last_used_at
    client.get(budget("hermes"))
    assert first is not None
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first

    earlier = first - dt.timedelta(minutes=2)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=earlier)
    client.get(budget("hermes"))
    latest = ApiKey.objects.get(pk=key.pk).last_used_at
    assert latest is not None
    assert latest > earlier
