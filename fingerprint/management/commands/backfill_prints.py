"""`manage.py backfill_prints [--limit N]`: the prints a catalog reference lacks (the landmark
print, the Chromaprint items at the reference speeds), from its stored reference audio."""
from django.core.management.base import BaseCommand

from fingerprint.catalog import do_backfill_prints


class Command(BaseCommand):
    help = "Compute missing landmark prints and reference-speed prints of catalog references and update the indexes."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="at most this many references")

    def handle(self, limit, **_):
        done, failed = do_backfill_prints(limit)
        self.stdout.write(f"{done} references updated, {len(failed)} failed")
        for rec, why in failed:
            self.stdout.write(f"  failed: recording {rec}: {why}")
        if failed:
            raise SystemExit(1)
