"""Everything under /api/ answers JSON, whatever fails, and carries a request id.

DRF's exception handler (`clearstem.api.errors`) shapes the errors it knows; this middleware
covers the rest, for /api/ paths only:

- every response gets an `X-Request-ID` header (the client's, when it sent a sane one); log
  lines written while the request runs carry the id (RequestIdLogFilter);
- an unexpected exception in a view is a 500 `{"code": "server_error", "detail", "request_id"}`,
  logged with its traceback and the request id;
- the database being unreachable (OperationalError / InterfaceError) is a 503
  `{"code": "unavailable"}` with Retry-After;
- any other error response that is not JSON (Django's 404 for an unknown URL, a 400 for a
  malformed request, a 500 from a failure outside the view) is replaced by the same JSON shape;
- query strings with control characters are refused (400 `invalid`), the same rule the
  parsers apply to bodies (`clearstem.api.inputs`).

It imports no DRF and no project model: the logging configuration loads the filter early.
"""
from __future__ import annotations

import contextvars
import logging
import re
import sys
import uuid

from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.signals import got_request_exception
from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse

from .inputs import find_control_character, refusal

API_PREFIX = "/api/"
REQUEST_ID_HEADER = "X-Request-ID"
#: Seconds a client should wait before retrying while the database is unreachable.
RETRY_AFTER_S = 5

log = logging.getLogger("clearstem.api")
_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("clearstem_request_id", default=None)
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")
_UNAVAILABLE = (OperationalError, InterfaceError)
#: Exceptions Django itself answers with a 4xx (turned into JSON on the way out).
_CLIENT_ERRORS = (Http404, PermissionDenied, BadRequest, SuspiciousOperation)

#: Codes for error responses that did not come from the API's exception handler.
CODE_BY_STATUS = {
    400: "bad_request", 401: "not_authenticated", 403: "permission_denied", 404: "not_found",
    405: "method_not_allowed", 406: "not_acceptable", 413: "too_large", 415: "unsupported_media_type",
    429: "throttled", 500: "server_error", 503: "unavailable",
}


class RequestIdLogFilter(logging.Filter):
    """Adds `request_id` (" [id]" inside an API request, "" elsewhere) to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Django logs a request's 4xx/5xx after the middleware has returned, with the request
        rid = _request_id.get() or getattr(getattr(record, "request", None), "request_id", None)
        record.request_id = f" [{rid}]" if rid else ""
        return True


def is_api(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _error(status: int, code: str, detail: str, request_id: str, **headers) -> JsonResponse:
    body = {"code": code, "detail": detail}
    if status >= 500:
        body["request_id"] = request_id
    return JsonResponse(body, status=status, headers=headers)


def _unavailable(request_id: str) -> JsonResponse:
    return _error(503, "unavailable", "the service is briefly unavailable: please retry shortly", request_id,
                  **{"Retry-After": str(RETRY_AFTER_S)})


def _is_json(response) -> bool:
    content_type = response.get("Content-Type", "")
    return content_type.startswith("application/json") or "+json" in content_type.split(";")[0]


def _remember_exception(sender, request=None, **kwargs):
    """Django is about to answer an exception raised outside a view with its HTML 500: note the
    exception, so the middleware can tell an outage (503) from a bug (500)."""
    if request is not None and is_api(request):
        request.api_exception = sys.exc_info()[1]


got_request_exception.connect(_remember_exception, dispatch_uid="clearstem.api.middleware")


class ApiMiddleware:
    """First in MIDDLEWARE, so it sees every response of the API, whoever made it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not is_api(request):
            return self.get_response(request)
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _SANE_ID.fullmatch(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        token = _request_id.set(request_id)
        try:
            response = self._refuse_query_controls(request) or self.get_response(request)
            if response.status_code >= 400 and not response.streaming and not _is_json(response):
                response = self._as_json(request, response)
        finally:
            _request_id.reset(token)
        response[REQUEST_ID_HEADER] = request_id
        return response

    def process_exception(self, request, exception):
        if not is_api(request):
            return None
        if isinstance(exception, RequestDataTooBig):
            return _error(413, "too_large", "the request body is too large", request.request_id)
        if isinstance(exception, _CLIENT_ERRORS):
            return None
        if isinstance(exception, _UNAVAILABLE):
            log.warning("database unavailable on %s %s (request %s): %s", request.method, request.path,
                        request.request_id, exception)
            return _unavailable(request.request_id)
        log.error("unhandled error on %s %s (request %s)", request.method, request.path, request.request_id,
                  exc_info=exception)
        return _error(500, "server_error", f"an unexpected error occurred; quote request {request.request_id}",
                      request.request_id)

    def _refuse_query_controls(self, request):
        found = find_control_character(request.GET)
        if found is None:
            return None
        field, ch = found
        return _error(400, "invalid", refusal(field, ch), request.request_id)

    def _as_json(self, request, response):
        status = response.status_code
        exc = getattr(request, "api_exception", None)
        if status >= 500 and isinstance(exc, _UNAVAILABLE):
            return _unavailable(request.request_id)
        data = getattr(response, "data", None)  # a DRF response rendered as something else
        if isinstance(data, dict) and "code" in data and "detail" in data:
            out = JsonResponse(data, status=status)
        elif status == 404:
            out = _error(404, "not_found", f"no such API endpoint: {request.path}", request.request_id)
        else:
            code = CODE_BY_STATUS.get(status, "server_error" if status >= 500 else "error")
            detail = (f"an unexpected error occurred; quote request {request.request_id}" if status >= 500
                      else response.reason_phrase)
            out = _error(status, code, detail, request.request_id)
        for header in ("Retry-After", "Allow", "WWW-Authenticate"):
            if header in response:
                out[header] = response[header]
        return out
