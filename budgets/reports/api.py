"""``GET /api/spend``: the spend report as JSON, or CSV with ``Accept: text/csv``."""

from __future__ import annotations

import csv
import io
from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from budgets.auth import principal_of
from budgets.reports import selectors
from budgets.reports.spend_report import GROUPS, MAX_DAYS
from hal0.query import refuse_unknown
from personas.openapi import error_responses

# What GET /api/spend takes (hal0/query.py: anything else is a 400 naming it).
REPORT_PARAMETERS = ("from", "to", "group_by", "tz", "agent", "persona", "model", "surface")


class SpendTotalsSerializer(serializers.Serializer[Any]):
    cost_usd = serializers.FloatField(
        allow_null=True,
        help_text="sum of the recorded costs; null when no charge here had its cost recorded",
    )
    charges = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    unpriced_charges = serializers.IntegerField(help_text="charges whose cost was not recorded")


class SpendRowSerializer(SpendTotalsSerializer):
    day = serializers.CharField(required=False, help_text="YYYY-MM-DD (local)")
    week = serializers.CharField(required=False, help_text="the week's Monday, YYYY-MM-DD")
    month = serializers.CharField(required=False, help_text="YYYY-MM")
    agent = serializers.CharField(required=False, help_text="also when grouped by persona")
    persona = serializers.CharField(required=False)
    model = serializers.CharField(required=False)
    surface = serializers.CharField(required=False)


class SpendReportSerializer(serializers.Serializer[Any]):
    from_ = serializers.CharField(help_text="first local day")
    to = serializers.CharField(help_text="last local day, inclusive")
    tz = serializers.CharField()
    group_by = serializers.ListField(child=serializers.CharField())
    filters = serializers.DictField(child=serializers.CharField())
    rows = SpendRowSerializer(many=True)
    total = SpendTotalsSerializer()

    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")  # "from" is a Python keyword
        return fields


class CSVRenderer(BaseRenderer):
    """The report's rows as CSV: a header line, then one line per row (no total line)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None
    ) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        report = (renderer_context or {}).get("report")
        if report is not None:
            writer.writerow(report.csv_header())
            writer.writerows(report.csv_rows())
        return out.getvalue().encode()


class SpendReportView(APIView):
    """Spend summed over a range of days, grouped by time and by who or what spent."""

    renderer_classes = [JSONRenderer, CSVRenderer]

    @extend_schema(
        operation_id="spend_report",
        summary="Spend over a range of days, grouped (JSON, or CSV with Accept: text/csv)",
        parameters=[
            OpenApiParameter("from", str, description="first local day, YYYY-MM-DD"),
            OpenApiParameter(
                "to", str, description=f"last local day, inclusive (at most {MAX_DAYS} days)"
            ),
            OpenApiParameter("group_by", str, description=f"comma-separated: {', '.join(GROUPS)}"),
            OpenApiParameter("tz", str, description="IANA zone of the days (default UTC)"),
            OpenApiParameter("agent", str),
            OpenApiParameter("persona", str),
            OpenApiParameter("model", str),
            OpenApiParameter("surface", str),
        ],
        responses={
            200: SpendReportSerializer,
            **error_responses("report.invalid", "agent.unknown", "persona.not_found"),
        },
    )
    def get(self, request: Request) -> Response:
        principal = principal_of(request)
        only_agent = principal.agent_id if principal and not principal.is_operator else None
        only_persona = principal.persona_id if principal and not principal.is_operator else None
        refuse_unknown(request.query_params, REPORT_PARAMETERS, code="report.invalid")
        query = selectors.parse_report_query(request.query_params)
        report = selectors.spend_report(query, only_agent=only_agent, only_persona=only_persona)
        response = Response(report.as_json())
        if isinstance(request.accepted_renderer, CSVRenderer):
            name = f"spend-{query.start:%Y%m%d}-{query.end:%Y%m%d}.csv"
            response["Content-Disposition"] = f'attachment; filename="{name}"'
        self._report = report
        return response

    def get_renderer_context(self) -> dict[str, Any]:
        context = super().get_renderer_context()
        context["report"] = getattr(self, "_report", None)
        return context

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        # Errors are always the JSON envelope, whatever the client asked for.
        if getattr(response, "exception", False):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
