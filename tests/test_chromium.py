"""The browser tests' Chromium helper leaves no database connection behind (tests/chromium.py)."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from tests.chromium import chromium_browser

pytestmark = pytest.mark.slow


def test_no_connection_opened_beside_the_browser_outlives_it(transactional_db):
    """A connection opened while the browser lived, ended by the server afterwards (as a
    PostgreSQL restart ends them all), must not come back the next time a browser runs."""
    with chromium_browser():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            beside = cursor.fetchone()[0]
    with connection.cursor() as cursor:  # outside the browser: this thread's plain connection
        cursor.execute("SELECT pg_backend_pid(), pg_terminate_backend(%s)", [beside])
        assert cursor.fetchone()[0] != beside
    with chromium_browser():
        assert get_user_model().objects.count() == 0  # on a live connection
