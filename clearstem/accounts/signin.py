"""Sign-in throttling (django-axes): one account is locked after AXES_FAILURE_LIMIT failures,
and one client address after CLEARSTEM_SIGNIN_IP_FAILURE_LIMIT failures over any accounts
(password spraying), both within AXES_COOLOFF_TIME; the lockout ends on its own after it."""
from __future__ import annotations

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit
from django.conf import settings
from django.db.models import Sum


class SignInLockoutHandler(AxesDatabaseHandler):
    """Axes counts failures per lockout parameter (["username", "ip_address"]) and compares
    the largest with one limit; this gives the address its own, higher limit."""

    def get_failures(self, request, credentials=None) -> int:
        by_account, by_address = (
            qs.aggregate(n=Sum("failures_since_start"))["n"] or 0
            for qs in self.get_user_attempts(request, credentials)
        )
        if by_address >= settings.CLEARSTEM_SIGNIN_IP_FAILURE_LIMIT:
            return max(by_account, get_failure_limit(request, credentials))
        return by_account
