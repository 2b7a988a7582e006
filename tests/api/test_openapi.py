"""``/api/schema/`` describes every API endpoint; ``/api/docs/`` serves without any CDN."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db

HAL0_PATHS = {
    "/api/agents/{agent_id}/personas/{persona_id}/budget": {"get", "put"},
    "/api/agents/{agent_id}/personas/{persona_id}/budget/check": {"post"},
    "/api/agents/{agent_id}/personas/{persona_id}/budget/charge": {"post"},
    "/api/agents/{agent_id}/personas/{persona_id}/budget/holds/{hold_id}/release": {"post"},
    "/api/agents": {"get"},
}
# The schema itself, its browsable page, and the JSON 404 for every other /api/ path.
NOT_DOCUMENTED = {"/api/schema/", "/api/docs/", "/api/(?P{rest}.*)"}


def api_routes() -> set[str]:
    """Every URL the project routes under /api/, spelled as OpenAPI paths."""
    routes: set[str] = set()

    def walk(patterns: list[Any], prefix: str) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route)
            elif isinstance(p, URLPattern):
                routes.add(
                    "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route.lstrip("^").rstrip("$"))
                )

    walk(get_resolver().url_patterns, "")
    return {r for r in routes if r.startswith("/api/") and r not in NOT_DOCUMENTED}


@pytest.fixture
def schema(client: Client) -> dict[str, Any]:
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    data: dict[str, Any] = response.json()
    return data


def test_the_schema_is_public_even_when_keys_are_required(client: Client, settings: Any) -> None:
    settings.HAL0_REQUIRE_API_KEY = True
    assert client.get("/api/schema/").status_code == 200
    assert client.get("/api/docs/").status_code == 200


def test_every_routed_api_path_is_in_the_schema(schema: dict[str, Any]) -> None:
    paths = set(schema["paths"])
    assert api_routes() - paths == set()


def test_the_hal0_endpoints_are_described_with_their_methods(schema: dict[str, Any]) -> None:
    for path, methods in HAL0_PATHS.items():
        assert path in schema["paths"], path
        assert methods <= set(schema["paths"][path]), path


def test_every_operation_needs_a_bearer_key_and_documents_its_errors(
    schema: dict[str, Any],
) -> None:
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    envelope = "#/components/schemas/ErrorEnvelope"
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            assert {"ApiKey": []} in op.get("security", []), where
            assert "200" in op["responses"], where
            for status in ("401", "500"):
                content = op["responses"][status]["content"]["application/json"]
                assert content["schema"]["$ref"] == envelope, where
            if "{agent_id}" in path:
                assert "404" in op["responses"], where
            # Releasing a hold and closing a run take no body.
            if method in {"put", "post"} and not path.endswith(("/release", "/close")):
                assert "requestBody" in op, where
                assert "400" in op["responses"], where


def test_budget_put_documents_operator_only_and_check_documents_its_codes(
    schema: dict[str, Any],
) -> None:
    base = "/api/agents/{agent_id}/personas/{persona_id}/budget"
    put = schema["paths"][base]["put"]["responses"]
    assert "auth.forbidden" in put["403"]["description"]
    check = schema["paths"][base + "/check"]["post"]["responses"]
    assert "budget.invalid_estimate" in check["400"]["description"]
    charge = schema["paths"][base + "/charge"]["post"]["responses"]
    assert "charge.conflict" in charge["409"]["description"]


def test_a_charge_documents_no_hold_error_and_release_keeps_both(
    schema: dict[str, Any],
) -> None:
    base = "/api/agents/{agent_id}/personas/{persona_id}/budget"
    charge = schema["paths"][base + "/charge"]["post"]
    release = schema["paths"][base + "/holds/{hold_id}/release"]["post"]["responses"]

    described = " ".join(r.get("description", "") for r in charge["responses"].values())
    assert "hold." not in described  # a valid charge is recorded whatever its hold
    # ... and whatever its persona's file says (test_budget_errors pins the recording).
    assert "persona.malformed" not in described
    assert "hold.not_found" in release["404"]["description"]
    assert "hold.resolved" in release["409"]["description"]

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        ref: str = node["allOf"][0]["$ref"] if "allOf" in node else node["$ref"]
        found: dict[str, Any] = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
        return found

    shape = resolve(_component(schema, charge)["properties"]["hold"])
    assert set(shape["properties"]) == {"id", "settled", "state"}
    states = resolve(shape["properties"]["state"])["enum"]
    assert set(states) == {"settled", "released", "not_found"}


def test_the_docs_page_loads_only_local_assets(client: Client) -> None:
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert assets, "the page should load the Swagger UI bundle"
    assert all(a.startswith("/static/") for a in assets), assets
    assert not re.search(r"https?://", html)
    assert "/api/schema/" in html


def _component(schema: dict[str, Any], op: dict[str, Any]) -> dict[str, Any]:
    ref = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    found: dict[str, Any] = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return found


def test_documented_response_shapes_match_what_the_api_answers(
    schema: dict[str, Any], make_persona: Any, api_client: Any
) -> None:
    make_persona("hermes", "coder", "daily_usd = 1.0\nhard_cap = true\n")
    base = "/api/agents/{agent_id}/personas/{persona_id}/budget"
    url = "/api/agents/hermes/personas/coder/budget"
    calls = [
        ("get", base, api_client.get(url)),
        (
            "post",
            base + "/check",
            api_client.post(url + "/check", {"estimated_cost_usd": 0.1}, format="json"),
        ),
        (
            "post",
            base + "/charge",
            api_client.post(
                url + "/charge",
                {"surface": "s", "model": "m", "cost_usd": 0.1, "request_id": "r1"},
                format="json",
            ),
        ),
        (
            "post",
            base + "/charge",
            api_client.post(
                url + "/charge",
                {"surface": "s", "model": "m", "cost_usd": 0.1, "request_id": "r2", "hold_id": "h"},
                format="json",
            ),
        ),
        (
            "post",
            base + "/check",
            api_client.post(
                url + "/check",
                {"model": "gpt-4o", "surface": "openai", "input_tokens": 9, "max_output_tokens": 9},
                format="json",
            ),
        ),
        (
            "post",
            base + "/charge",
            api_client.post(
                url + "/charge",
                {"surface": "openai", "model": "gpt-4o", "input_tokens": 9, "request_id": "r3"},
                format="json",
            ),
        ),
        ("get", "/api/prices", api_client.get("/api/prices", {"model": "gemini-2.5-pro"})),
    ]
    for method, path, response in calls:
        assert response.status_code == 200, response.content
        component = _component(schema, schema["paths"][path][method])
        body = response.json()
        assert set(component.get("required", [])) <= set(body), path
        assert set(body) <= set(component["properties"]), path


def test_the_pricing_fields_are_documented_with_their_constraints(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    check = components["CheckRequest"]["properties"]
    charge = components["ChargeRequest"]["properties"]
    row = components["ChargeRow"]["properties"]
    prices = schema["paths"]["/api/prices"]["get"]

    for body, keys in ((check, ("input_tokens", "max_output_tokens")), (charge, TOKENS)):
        for key in keys:
            assert (body[key]["minimum"], body[key]["maximum"]) == (0, 2**31 - 1), key
    assert "estimated_cost_usd" not in components["CheckRequest"].get("required", [])
    assert "cost_usd" not in components["ChargeRequest"].get("required", [])
    assert check["model"]["maxLength"] == 200
    assert row["cost_source"]["allOf"] == [{"$ref": "#/components/schemas/CostSourceEnum"}]
    assert components["CostSourceEnum"]["enum"] == ["reported", "catalogue", "override", "unpriced"]
    assert components["EstimateSourceEnum"]["enum"] == ["client", "catalogue", "override"]
    assert [p["name"] for p in prices["parameters"]] == ["model", "surface"]
    assert set(prices["responses"]) >= {"200", "400", "404"}


TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
