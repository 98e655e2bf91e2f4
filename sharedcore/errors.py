"""Domain errors: a refusal with a machine-readable code and a sentence for people.

Services raise these and know nothing of HTTP or exit statuses; the API's exception handler
(`clearstem.api.errors`) maps them to a status in one table, and management commands turn
them into a message and a non-zero exit. The subclass says what kind of refusal it is, so the
table needs an entry only where a code's status differs from its kind's."""
from __future__ import annotations


class DomainError(Exception):
    """The request cannot be carried out as asked (bad input or a broken rule)."""

    def __init__(self, code: str, detail: str, *, extra: dict | None = None):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.extra = extra or {}

    def __str__(self) -> str:
        return self.detail

    def as_dict(self) -> dict:
        return {"code": self.code, "detail": self.detail, **self.extra}


class NotFound(DomainError):
    """The object does not exist, or is not visible to the one asking."""


class PermissionDenied(DomainError):
    """The actor may not do this (wrong organisation kind, read-only role)."""


class Conflict(DomainError):
    """The object's current state forbids the change (already revoked, already finished)."""


class RightsRefused(DomainError):
    """The license terms (or their absence) refuse the separation or delivery; `extra` carries
    every reason."""
