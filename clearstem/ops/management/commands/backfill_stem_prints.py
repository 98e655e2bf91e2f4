"""`manage.py backfill_stem_prints [--limit N]`: fingerprints for stems made before every stem
was fingerprinted, so copies of them can be found by sound (`clearstem.jobs.stem_prints`)."""
from django.core.management.base import BaseCommand

from clearstem.jobs.stem_prints import do_backfill_stem_prints


class Command(BaseCommand):
    help = "Fingerprint stems that have no prints yet (for finding them from copies in the wild)."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="at most this many stems")

    def handle(self, limit, **_):
        done, failed = do_backfill_stem_prints(limit)
        self.stdout.write(f"{done} stems fingerprinted, {len(failed)} failed")
        for stem, why in failed:
            self.stdout.write(f"  failed: stem {stem}: {why}")
        if failed:
            raise SystemExit(1)
