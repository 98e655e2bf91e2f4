"""The OpenAPI schema is the contract (tests/test_schema.py runs schemathesis against it).

drf-spectacular's AutoSchema, told what it cannot see for itself:
- every operation documents the errors it can answer, in the one error shape (ErrorSerializer,
  component `Error`): 400 for all (bad input; a control character in the query string), 401
  and 403 where a token is needed, 404 where the path names an object or a write names others,
  409 where a state can refuse, 415 for request bodies, 429 for throttled writes;
- only GET lists are paginated (a create that answers a list returns a plain array);
- a grant's `status` is draft/active in a request and any LicenseGrant.Status (or the derived
  `scheduled`) in a response.
"""
from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema

from licensing.models import LicenseGrant

from .serializers import ErrorSerializer, GrantStatusField

ERROR_DESCRIPTIONS = {
    "400": "Invalid input (`invalid` with per-field `errors`, `invalid_range`, `parse_error`, or a domain code)",
    "401": "No valid token (`not_authenticated`, `authentication_failed`)",
    "403": "Not allowed (`permission_denied`, or the license terms refuse)",
    "404": "No such object, or not visible to you (`not_found`)",
    "409": "The object's state refuses this (`conflict` and kin)",
    "415": "Unsupported content type of the request body",
    "429": "Too many writes (`throttled`); see Retry-After",
}


class ApiSchema(AutoSchema):
    def _get_paginator(self):
        return super()._get_paginator() if self.method == "GET" else None

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for status in self._error_statuses():
            if status not in responses:
                response = self._get_response_for_code(ErrorSerializer, status, direction=direction)
                response["description"] = ERROR_DESCRIPTIONS[status]
                responses[status] = response
        return responses

    def _error_statuses(self) -> list[str]:
        authenticated = bool(self.view.get_permissions())
        writes = self.method in ("POST", "PUT", "PATCH", "DELETE")
        names_object = "{" in self.path
        statuses = ["400"]
        if authenticated:
            statuses += ["401", "403"]
        if names_object or (writes and authenticated):
            statuses += ["404"]
        if authenticated and (names_object or writes):
            statuses += ["409"]
        if writes:
            statuses += ["415"]
        if writes and getattr(self.view, "throttle_scope", None):
            statuses += ["429"]
        return statuses


class GrantStatusFieldExtension(OpenApiSerializerFieldExtension):
    target_class = GrantStatusField

    def map_serializer_field(self, auto_schema, direction):
        values = list(self.target.choices) if direction == "request" else [*LicenseGrant.Status.values, "scheduled"]
        return {"type": "string", "enum": values}
