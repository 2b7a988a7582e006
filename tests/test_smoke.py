from __future__ import annotations

import pytest
from django.test import Client


@pytest.mark.django_db
def test_unknown_api_url_answers_in_the_envelope(client: Client) -> None:
    response = client.get("/api/no-such-thing")
    assert response.status_code == 404
    # Compact, like every answer DRF renders, so clients see one format.
    assert response.content == (
        b'{"error":{"code":"not_found","message":"no such endpoint","details":{}}}'
    )


@pytest.mark.django_db
def test_a_post_to_an_unknown_api_url_is_404_not_a_csrf_refusal() -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/api/agents/hermes/nope", data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
