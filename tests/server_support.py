"""A real gunicorn for tests, with production settings, on the test database.

The server runs ``hal0.wsgi`` as the README's recipe does (DEBUG off, a SECRET_KEY, HTTPS
hardening on), against the database and data folder of the running test, so the test
sees what the server wrote. Tests that use it need ``transactional_db``: the server's
connections only see committed rows.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

# Settings a developer's or CI's shell may export that would change what is tested.
_SCRUBBED = (
    "PYTEST_VERSION",  # hal0/settings.py relaxes the HTTPS defaults under pytest
    "DEBUG",
    "ALLOWED_HOSTS",
    "BEHIND_TLS_PROXY",
    "CSRF_TRUSTED_ORIGINS",
    "HAL0_REQUIRE_API_KEY",
)


def current_database_url() -> str:
    """A ``DATABASE_URL`` for the database this test runs on."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or "5432"
    return f"postgres://{auth}{host}:{port}/{db['NAME']}"


def production_env(**overrides: str) -> dict[str, str]:
    """The environment of a production server on this test's database and data folder."""
    env = {
        k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.startswith("SECURE_")
    }
    env.update(
        DATABASE_URL=current_database_url(),
        HAL0_DATA_DIR=str(Path(settings.HAL0_DATA_DIR)),
        SECRET_KEY="a-test-only-secret-key-that-is-long-enough-for-check-deploy-0123456789",
        LOG_LEVEL="WARNING",
    )
    env.update(overrides)
    return env
