"""DRF's content negotiation, with the answer for the usual Accept headers taken as read.

Parsing the Accept header was about 5 % of a check's time in a gunicorn worker
(docs/benchmarks.md). Clients of this API send no Accept header, ``*/*`` or
``application/json``; for those, on a view whose first renderer is JSON, DRF's
negotiation would pick that renderer and that media type, so we return it directly.
Every other case (another header, ``?format=``, a view with other renderers) is DRF's.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

JSON = "application/json"
# None: the header is absent (DRF reads that as */*). An empty header is not here: DRF
# answers it with 406.
_USUAL_ACCEPT = frozenset({None, "*/*", JSON})


class UsualAcceptNegotiation(DefaultContentNegotiation):
    def select_renderer(
        self,
        request: Request,
        renderers: Iterable[BaseRenderer],
        format_suffix: str | None = None,
    ) -> tuple[BaseRenderer, Any]:
        renderers = list(renderers)
        meta = request.META
        if (
            format_suffix is None
            and not meta.get("QUERY_STRING")
            and meta.get("HTTP_ACCEPT") in _USUAL_ACCEPT
            and renderers
            and renderers[0].media_type == JSON
        ):
            return renderers[0], JSON
        return super().select_renderer(request, renderers, format_suffix)
