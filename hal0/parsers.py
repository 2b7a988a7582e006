"""Strict JSON bodies: exact decimals, and a clear error for anything that is not JSON.

Numbers are parsed to ``Decimal`` so money never passes through a binary float.
``NaN``/``Infinity`` are parsed (to non-finite decimals) rather than refused here, so the
endpoint can answer with its own precise code (``budget.invalid_estimate``, ...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import RequestDataTooBig
from rest_framework.parsers import BaseParser
from rest_framework.request import Request

from hal0.errors import BadRequest, PayloadTooLarge

# Sentinel for "the request had no body at all".
EMPTY = object()

# No API body nests more than a level or two. The limit keeps far below Python's recursion
# limit: json.loads on 20,000 opening brackets (well under the size limit) would raise
# RecursionError, and anything that walked a 900-deep value later could too.
MAX_DEPTH = 32
_STRUCTURAL = re.compile(r'[\[\]{}"\\]')


class TooDeep(ValueError):
    """A JSON document nested deeper than :data:`MAX_DEPTH`."""


def loads(raw: bytes | str) -> Any:
    """Parse JSON text with exact decimals; raises ``ValueError`` on anything else."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    if _nests_deeper(raw, MAX_DEPTH):
        raise TooDeep(f"request body nests deeper than {MAX_DEPTH} levels")
    return json.loads(raw, parse_float=Decimal, parse_constant=Decimal)


def _nests_deeper(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than ``limit``; linear, no recursion."""
    # Nearly every body has fewer brackets than the limit: two C-speed counts decide.
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    in_string = False
    escaped_at = -1
    # Visit only quotes, backslashes and brackets; the escape after a backslash is skipped.
    for match in _STRUCTURAL.finditer(text):
        char, at = match.group(), match.start()
        if at == escaped_at:
            continue
        if in_string:
            if char == "\\":
                escaped_at = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


def read_json_body(request: Request) -> Any:
    """The request's JSON body, or ``EMPTY``; ``budget.invalid_body`` if it is not JSON.

    Reads the raw body whatever the Content-Type says: hal0 clients (and ``curl -d``)
    do not always send ``application/json``.
    """
    try:
        raw = request.body
    except RequestDataTooBig as exc:
        raise PayloadTooLarge() from exc
    if not raw.strip():
        return EMPTY
    return _parsed(raw)


def _parsed(raw: bytes) -> Any:
    try:
        return loads(raw)
    except TooDeep as exc:
        raise BadRequest(str(exc), code="budget.invalid_body") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("request body must be valid JSON", code="budget.invalid_body") from exc


def read_json_object(request: Request) -> dict[str, Any]:
    """The request's body as a JSON object; ``budget.invalid_body`` for anything else."""
    body = read_json_body(request)
    if body is EMPTY or body is None:
        raise BadRequest("request body must be a JSON object", code="budget.invalid_body")
    if not isinstance(body, dict):
        raise BadRequest("request body must be a JSON object", code="budget.invalid_body")
    return body


class Hal0JSONParser(BaseParser):
    """DRF parser with the same rules, for any view that uses ``request.data``."""

    media_type = "application/json"

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        return _parsed(stream.read())
