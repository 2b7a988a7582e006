"""Agent and persona ids: the only strings ever joined into a path."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def is_valid_id(value: object) -> bool:
    return isinstance(value, str) and ID_RE.fullmatch(value) is not None


def validate_id(value: str) -> None:
    """Model-field validator: lower-case letters, digits, ``_`` and ``-``, 1-64 long."""
    if not is_valid_id(value):
        raise ValidationError(
            "ids are 1-64 characters: lower-case letters, digits, '_' and '-', "
            "starting with a letter or digit",
            code="invalid_id",
        )
