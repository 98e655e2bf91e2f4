"""`manage.py verify_ledger`: recompute every leaf, node and root and check every signature.

Exits 1 naming the first bad index; 0 when the whole log verifies."""
from django.core.management.base import BaseCommand

from provenance.ledger import verify_ledger


class Command(BaseCommand):
    help = "Verify the whole provenance ledger; non-zero exit on any fault."

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, default=5000)

    def handle(self, batch, **_):
        def progress(done, total):
            if self.stdout.isatty():
                self.stdout.write(f"\r{done}/{total}", ending="")

        report = verify_ledger(batch=batch, progress=progress)
        if report.ok:
            self.stdout.write(f"OK: {report.size} entries and {report.heads_checked} signed tree heads verify "
                              f"({report.elapsed_s:.2f} s)")
            return
        self.stdout.write(f"FAIL at index {report.first_bad_index}: {report.problem}")
        raise SystemExit(1)
