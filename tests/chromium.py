"""Debian's headless Chromium under Playwright, for the tests that drive the web UI.

Playwright's sync API runs an asyncio loop in this thread (in a greenlet) while it lives, so
`asyncio.get_running_loop()` answers here meanwhile. Django then keeps this thread's database
connections in a context variable instead of the plain thread-local storage (asgiref's Local), and
the connections the tests' own ORM calls open in that time are invisible to pytest-django's
teardown, which runs after the browser has gone and closes only the thread-local ones. Such a
connection survived in the context variable and came back the next time a browser ran in this
process: after tests/test_faults.py had restarted PostgreSQL, a browser test's first query failed
with "terminating connection due to administrator command" (CI, twice). So the connections opened
while the browser lived are closed before it goes.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CLEARSTEM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"


@contextlib.contextmanager
def chromium_browser():
    """A launched Chromium; this thread's connections opened meanwhile are closed at the end."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make test` as root once (it installs Debian's chromium)")
    from django.db import connections
    from playwright.sync_api import sync_playwright

    # The tests' ORM calls (and the database flush between tests) are plain synchronous code,
    # which Django refuses while an event loop runs in the thread. Set only while the browser
    # lives: `check --deploy` warns about it.
    with pytest.MonkeyPatch.context() as mp, sync_playwright() as p:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
            connections.close_all()  # while the loop still runs: the ones in the context variable
