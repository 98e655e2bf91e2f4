import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from clearstem.jobs.services import do_reconcile_jobs


class Command(BaseCommand):
    help = "Re-send jobs a broker lost and re-queue jobs whose worker died (once, or --every N s)."

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, default=0, help="repeat every N seconds")

    def handle(self, every, **_):
        while True:
            counts = do_reconcile_jobs()
            self.stdout.write(" ".join(f"{k}={v}" for k, v in counts.items()))
            if not every:
                return
            close_old_connections()
            time.sleep(every)
