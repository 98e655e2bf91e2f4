import threading

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from clearstem.jobs.reconciler import TRANSIENT, reconcile_once, run_reconciler


class Command(BaseCommand):
    help = ("Re-send jobs a broker lost and re-queue jobs whose worker died: once, or every N seconds "
            "(then it survives database and broker outages, retrying with backoff).")

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, default=0, help="repeat every N seconds")

    def handle(self, every, **_):
        if not every:
            try:
                self.report(reconcile_once())
            except TRANSIENT as exc:
                what = "database" if isinstance(exc, DatabaseError) else "broker"
                raise CommandError(f"unavailable: the {what} cannot be reached ({exc})") from exc
            return
        try:
            run_reconciler(every, threading.Event(), report=self.report)
        except KeyboardInterrupt:
            pass

    def report(self, counts: dict) -> None:
        self.stdout.write(" ".join(f"{k}={v}" for k, v in counts.items()))
        self.stdout.flush()
