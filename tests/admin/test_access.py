"""Who may open the operators' pages: staff sessions only; the login resists guessing."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from budgets.apikeys import create_key

pytestmark = pytest.mark.django_db

PAGES = ["/admin/", "/admin/spend/", "/admin/budgets/charge/", "/admin/personas/persona/"]


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_visitors_are_sent_to_the_login(client: Client, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.parametrize("url", PAGES)
def test_an_api_key_does_not_open_operator_pages(client: Client, url: str, settings: Any) -> None:
    settings.HAL0_REQUIRE_API_KEY = True
    _, raw = create_key(scope="operator", name="robot")
    response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_a_user_who_is_not_staff_cannot_get_in(client: Client, django_user_model: Any) -> None:
    django_user_model.objects.create_user("guest", password="a-long-guest-passphrase")
    response = client.post(
        "/admin/login/", {"username": "guest", "password": "a-long-guest-passphrase"}
    )
    assert response.status_code == 200  # the form again, with an error
    assert client.get("/admin/spend/").status_code == 302


def _login(
    client: Client, password: str, *, address: str = "203.0.113.9", username: str = "olivia"
) -> Any:
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password},
        REMOTE_ADDR=address,
    )


@pytest.fixture
def olivia(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("olivia", "o@example.com", "right-one-42")


def test_a_good_password_logs_in(client: Client, olivia: Any) -> None:
    response = _login(client, "right-one-42")
    assert response.status_code == 302
    assert client.get("/admin/spend/").status_code == 200


def test_repeated_failures_lock_the_login_even_for_the_right_password(
    client: Client, olivia: Any, settings: Any
) -> None:
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert _login(client, "guess").status_code == 200
    locked = _login(client, "guess")
    assert locked.status_code == 429
    response = _login(client, "right-one-42")
    assert response.status_code == 429
    body = response.content.decode()
    assert "Too many failed logins" in body
    assert "axes_reset_username olivia" in body
    assert "Traceback" not in body
    assert client.get("/admin/spend/").status_code == 302


def test_a_success_before_the_limit_resets_the_count(client: Client, olivia: Any) -> None:
    for _ in range(3):
        _login(client, "guess")
    assert _login(client, "right-one-42").status_code == 302
    client.logout()
    for _ in range(3):
        assert _login(client, "guess").status_code == 200


def test_failures_from_another_address_do_not_lock_the_operator_out(
    client: Client, olivia: Any, settings: Any
) -> None:
    # Someone who knows the name fails on purpose from their own address...
    for _ in range(settings.AXES_FAILURE_LIMIT + 2):
        _login(client, "guess", address="198.51.100.66")
    assert _login(client, "right-one-42", address="198.51.100.66").status_code == 429

    # ...and the operator still logs in from hers.
    assert _login(Client(), "right-one-42").status_code == 302


def test_failures_for_other_names_from_one_address_do_not_lock_a_name_out(
    client: Client, olivia: Any, settings: Any
) -> None:
    for n in range(settings.AXES_FAILURE_LIMIT + 2):
        _login(client, "guess", username=f"someone-{n}")

    assert _login(client, "right-one-42").status_code == 302
