"""Fixtures for the admin tests: a logged-in staff client and ledger rows."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client


@pytest.fixture
def staff_client(db: None, django_user_model: Any) -> Client:
    """A superuser's session (``admin_client`` with an operator-like name)."""
    user = django_user_model.objects.create_superuser("olivia", "olivia@example.com", "pw-olivia-1")
    client = Client()
    client.force_login(user)
    return client
