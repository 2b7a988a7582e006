"""The one error envelope: ``{"error": {"code", "message", "details"}}``.

Domain code raises :class:`ApiError` (or a subclass) with a stable ``code``; DRF's
exception handler below renders every error, ours or the framework's, in that envelope.
Plain Django views under ``/api/`` (unknown URLs, crashes) get the same shape through
``handler404``/``handler500``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import DisallowedHost, PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.request import split_domain_port
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.response import Response

log = logging.getLogger(__name__)
# A hostile Host header is cut to this length in the message that names it.
SHOWN_HOST_LEN = 100


class ApiError(drf_exceptions.APIException):
    """A domain error with a stable code, rendered in the envelope."""

    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code = "internal"
    default_detail = "request failed"

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        status_code: int | None = None,
    ) -> None:
        self.message = message or str(self.default_detail)
        self.code = code or self.default_code
        self.details = details or {}
        if status_code is not None:
            self.status_code = status_code
        super().__init__(detail=self.message, code=self.code)


class NotFound(ApiError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"
    default_detail = "not found"


class BadRequest(ApiError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "request.invalid"
    default_detail = "bad request"


class Conflict(ApiError):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "conflict"


class PayloadTooLarge(ApiError):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request.too_large"
    default_detail = "request body is too large"


def envelope(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


# DRF's own exceptions, mapped onto stable codes. Anything not listed is an internal error.
_DRF_CODES: dict[type[Exception], tuple[int, str]] = {
    drf_exceptions.NotAuthenticated: (401, "auth.missing"),
    drf_exceptions.AuthenticationFailed: (401, "auth.invalid"),
    drf_exceptions.PermissionDenied: (403, "auth.forbidden"),
    drf_exceptions.MethodNotAllowed: (405, "request.method_not_allowed"),
    drf_exceptions.NotAcceptable: (406, "request.not_acceptable"),
    drf_exceptions.UnsupportedMediaType: (415, "request.unsupported_media_type"),
    drf_exceptions.ParseError: (400, "budget.invalid_body"),
    drf_exceptions.Throttled: (429, "request.throttled"),
    drf_exceptions.NotFound: (404, "not_found"),
}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF ``EXCEPTION_HANDLER``: every error leaves in the envelope, never a traceback."""
    headers: dict[str, str] = {}
    if isinstance(exc, ApiError):
        return Response(envelope(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge()
        return Response(envelope(exc.code, exc.message), status=exc.status_code)
    if isinstance(exc, Http404):
        return Response(envelope("not_found", "not found"), status=404)
    if isinstance(exc, PermissionDenied):
        return Response(envelope("auth.forbidden", "permission denied"), status=403)
    if isinstance(exc, drf_exceptions.APIException):
        status_code, code = next(
            (mapped for exc_type, mapped in _DRF_CODES.items() if isinstance(exc, exc_type)),
            (exc.status_code, "request.invalid"),
        )
        auth_header = getattr(exc, "auth_header", None)
        if status_code == 401:
            headers["WWW-Authenticate"] = auth_header or 'Bearer realm="api"'
        wait = getattr(exc, "wait", None)
        if wait is not None:
            headers["Retry-After"] = str(int(wait))
        message = _plain_message(exc.detail)
        return Response(envelope(code, message), status=status_code, headers=headers)
    # Unexpected: log with the traceback, answer without it.
    log.exception("internal error in %s", context.get("view").__class__.__name__)
    return Response(envelope("internal", "internal error"), status=500)


def _plain_message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _plain_message(detail[0])
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        return f"{key}: {_plain_message(value)}"
    return str(detail)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def envelope_response(
    code: str, message: str, status: int, details: dict[str, Any] | None = None
) -> JsonResponse:
    """An error answered outside DRF (middleware, Django's handlers), in the envelope."""
    # Byte for byte like DRF's answers (compact, UTF-8), so a client sees one format.
    response = JsonResponse(
        envelope(code, message, details),
        status=status,
        json_dumps_params={"separators": (",", ":"), "ensure_ascii": False},
    )
    # Answered before CommonMiddleware would add it (hal0/middleware.py): without it an
    # HTTP/1.1 server sends the body chunked.
    response["Content-Length"] = str(len(response.content))
    return response


def host_not_allowed(request: HttpRequest) -> HttpResponse:
    """``400 request.invalid`` for a Host header the service does not answer to."""
    raw = request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME", "")
    shown = raw[:SHOWN_HOST_LEN]
    domain, _port = split_domain_port(raw)
    if domain:
        message = (
            f"host {shown!r} is not served here: add {domain!r} to the ALLOWED_HOSTS "
            "setting (comma-separated) to call the service by that name"
        )
    else:
        message = f"the Host header {shown!r} is not a valid host name"
    return envelope_response(
        "request.invalid", message, 400, {"host": shown, "setting": "ALLOWED_HOSTS"}
    )


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


@csrf_exempt
def api_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """The last route under /api/: an unknown API path is a JSON 404 even with DEBUG on
    (Django answers an unrouted URL with its HTML debug page then, not ``handler404``)."""
    return envelope_response("not_found", "no such endpoint", 404)


def handler500(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return envelope_response("internal", "internal error", 500)
    return defaults.server_error(request)


def handler400(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        if isinstance(exception, RequestDataTooBig):
            return envelope_response("request.too_large", "request body is too large", 413)
        if isinstance(exception, DisallowedHost):
            return host_not_allowed(request)
        return envelope_response("request.invalid", "bad request", 400)
    return defaults.bad_request(request, exception)


def handler403(request: HttpRequest, exception: Exception) -> HttpResponse:
    if _is_api(request):
        return envelope_response("auth.forbidden", "permission denied", 403)
    return defaults.permission_denied(request, exception)
