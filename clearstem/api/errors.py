"""One error shape for the whole API: {"code": "...", "detail": "..."} with a 4xx status.

Services raise `sharedcore.errors.DomainError`; this module alone decides the HTTP status:
by the error's code where one is listed in STATUS_BY_CODE, else by its kind (subclass).
Validation errors keep their per-field messages under "errors" so forms can show them.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from sharedcore import errors as domain

#: Codes whose status is not their kind's.
STATUS_BY_CODE = {
    "too_large": status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    "not_audio": status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    "corrupt_audio": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "too_long": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "too_short": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "silent": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "email_failed": status.HTTP_503_SERVICE_UNAVAILABLE,
}
#: Status per kind of domain error, most specific first.
STATUS_BY_KIND = (
    (domain.NotFound, status.HTTP_404_NOT_FOUND),
    (domain.PermissionDenied, status.HTTP_403_FORBIDDEN),
    (domain.RightsRefused, status.HTTP_403_FORBIDDEN),
    (domain.Conflict, status.HTTP_409_CONFLICT),
    (domain.DomainError, status.HTTP_400_BAD_REQUEST),
)


def http_status(exc: domain.DomainError) -> int:
    if exc.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[exc.code]
    return next(code for kind, code in STATUS_BY_KIND if isinstance(exc, kind))


_DEFAULT_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.ParseError: "parse_error",
    exceptions.Throttled: "throttled",
}


def exception_handler(exc, context):
    if isinstance(exc, domain.DomainError):
        return Response(exc.as_dict(), status=http_status(exc))
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        body = {"code": "invalid", "detail": _first_message(exc.detail), "errors": exc.detail}
    else:
        code = next((c for cls, c in _DEFAULT_CODES.items() if isinstance(exc, cls)), None)
        if code is None:
            codes = exc.get_codes()
            code = codes if isinstance(codes, str) else "error"
        body = {"code": code, "detail": str(exc.detail)}
    response.data = body
    return response


def _first_message(detail) -> str:
    if isinstance(detail, dict):
        for field, value in detail.items():
            msg = _first_message(value)
            return msg if field == "non_field_errors" else f"{field}: {msg}"
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    return str(detail)
