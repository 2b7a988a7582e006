"""The one rule for query strings, on every endpoint that takes query parameters.

- A parameter the endpoint does not take is refused: 400 with the endpoint's own
  bad-query code, naming the parameter (``?limt=5`` is a typo to hear about, not a
  request to answer with the default page size).
- A parameter sent empty (``?state=``) is the same as one left out, as an HTML form
  sends an unset field (where the schema lists a parameter's values, it lists ``""``
  too: ``empty_in_enums``).
- ``format`` is DRF's format override (``?format=csv``): every endpoint takes it.

docs/api.md ("Query parameters") states the rule for clients.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from hal0.errors import BadRequest
from hal0.text import echoable

# Taken by every endpoint: DRF's URL_FORMAT_OVERRIDE.
ALWAYS = frozenset({"format"})
# A refused name is echoed back at most this long.
SHOWN = 64


def refuse_unknown(params: Mapping[str, Any], known: Iterable[str], *, code: str) -> None:
    """400 ``code`` for the first parameter (in the order sent) not in ``known``."""
    allowed = ALWAYS.union(known)
    for name in params:
        if name in allowed:
            continue
        shown = echoable(name, SHOWN)
        takes = sorted(set(known))
        raise BadRequest(
            f"unknown query parameter {shown!r}: this endpoint takes {', '.join(takes)}",
            code=code,
            details={"key": shown, "known": takes},
        )


def empty_in_enums(result: dict[str, Any], **_: Any) -> dict[str, Any]:
    """drf-spectacular post-processing hook: a query parameter with a list of values
    (``state``, ``format``) lists ``""`` too, which means the same as leaving it out."""
    for path in result.get("paths", {}).values():
        for operation in path.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter.get("in") == "query" and "" not in schema.get("enum", [""]):
                    schema["enum"] = ["", *schema["enum"]]
    return result
