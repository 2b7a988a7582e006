"""Text a client sends that the service stores, mirrors or echoes back.

One rule for every database: a string the service keeps (surface, model, request_id,
hold_id) holds printable text only. Control characters (Unicode category Cc: U+0000-U+001F,
U+007F-U+009F) and lone surrogates (U+D800-U+DFFF, which JSON's ``\\ud800`` escapes can
produce but UTF-8 cannot encode) are refused with the endpoint's 400 code: PostgreSQL
cannot store NUL in a text column at all, SQLite and the JSONL mirror cannot store a lone
surrogate, and a tab or an escape sequence in a model name only hurts the operator who
reads the ledger with ``tail -f``.
"""

from __future__ import annotations

import re

_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# The same rule plus "not blank", as the API schema states it (ECMA-262 regex syntax).
# Lone surrogates are refused too; a schema pattern matches whole code points only.
PRINTABLE_NON_BLANK_PATTERN = (
    r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
)


def unprintable(value: str) -> str | None:
    """Why ``value`` is refused (``"U+0000 at index 1"``), or None when it is printable."""
    match = _UNPRINTABLE.search(value)
    if match is None:
        return None
    return f"U+{ord(match.group()):04X} at index {match.start()}"


def echoable(value: str, limit: int = 64) -> str:
    """``value`` cut to ``limit`` characters, safe to put in a JSON answer as UTF-8.

    A lone surrogate cannot be encoded, so the renderer would fail with a 500; it is
    shown as its escape (``\\ud800``) instead.
    """
    return value[:limit].encode("utf-8", "backslashreplace").decode("utf-8")
