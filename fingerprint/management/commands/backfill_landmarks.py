"""`manage.py backfill_landmarks [--limit N]`: landmark prints for references registered before
landmarks existed (or after PRINT_VERSION changed), from their stored reference audio."""
from django.core.management.base import BaseCommand

from fingerprint.catalog import do_backfill_landmarks


class Command(BaseCommand):
    help = "Compute missing landmark prints of catalog references and update the landmark index."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="at most this many references")

    def handle(self, limit, **_):
        done, failed = do_backfill_landmarks(limit)
        self.stdout.write(f"{done} reference prints computed, {len(failed)} failed")
        for rec, why in failed:
            self.stdout.write(f"  failed: recording {rec}: {why}")
        if failed:
            raise SystemExit(1)
