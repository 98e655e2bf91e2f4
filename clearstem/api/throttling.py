"""Throttles for writes: each authenticated user gets a rate per scope (a view's
`throttle_scope`: uploads, jobs, license-requests), counted in Django's cache (Redis in
production, so every web process shares the count). Reads are not throttled here.

Rates come from settings.CLEARSTEM_THROTTLE_RATES ("30/min"; empty = no limit), read on each
request so a deployment (or a test) can change them. Over the rate: 429 `throttled` with
Retry-After (see `clearstem.api.errors`). If the cache cannot be reached the write is let
through (and logged): a throttle must not turn a cache outage into failed uploads."""
from __future__ import annotations

import logging

from django.conf import settings
from rest_framework.permissions import SAFE_METHODS
from rest_framework.throttling import ScopedRateThrottle

log = logging.getLogger(__name__)


class WriteRateThrottle(ScopedRateThrottle):
    cache_format = "throttle:%(scope)s:%(ident)s"

    def allow_request(self, request, view):
        if request.method in SAFE_METHODS:
            return True
        try:
            return super().allow_request(request, view)
        except Exception:  # the cache backend's own errors (redis, files) differ by backend
            log.warning("throttle cache unavailable: %s not throttled", self.scope, exc_info=True)
            return True

    def get_rate(self):
        return settings.CLEARSTEM_THROTTLE_RATES.get(self.scope) or None
