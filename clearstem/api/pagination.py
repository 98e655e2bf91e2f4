"""Pages of every list: `limit` (at most MAX_PAGE_SIZE; larger values clamp to it) and
`offset`. Values that are not non-negative integers fall back to the defaults; an offset past
the end is an empty page found by counting (DRF never slices with it), so no query string
reaches the database as an out-of-range number."""
from __future__ import annotations

from django.conf import settings
from rest_framework.pagination import LimitOffsetPagination


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = settings.CLEARSTEM_API_MAX_PAGE_SIZE

    def get_schema_operation_parameters(self, view):
        params = super().get_schema_operation_parameters(view)
        for p in params:
            if p["name"] == self.limit_query_param:
                p["description"] = f"Number of results per page (default {self.default_limit}, at most {self.max_limit})."
        return params
