"""`manage.py readiness`: what `/readyz` says, for processes that serve no HTTP (workers, the
reconciler) — the compose file's health check. Exit 0 when ready, 1 otherwise."""
import json

from django.core.management.base import BaseCommand

from clearstem.health import readiness


class Command(BaseCommand):
    help = "Check that the database, the broker and the storage are reachable (exit 1 if not)."

    def handle(self, **_):
        ready, checks = readiness()
        self.stdout.write(json.dumps({"status": "ready" if ready else "unavailable", "checks": checks}))
        if not ready:
            raise SystemExit(1)
