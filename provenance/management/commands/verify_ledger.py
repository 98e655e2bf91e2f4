"""`manage.py verify_ledger`: recompute every leaf, node and root and check every signature.

Exits 1 naming the first bad index; 0 when the whole log verifies. The verdict is kept, so
auditors see when the ledger was last fully verified and what it showed."""
from django.core.management.base import BaseCommand

from provenance.audit import do_verify_ledger


class Command(BaseCommand):
    help = "Verify the whole provenance ledger; non-zero exit on any fault."

    def handle(self, **_):
        run = do_verify_ledger(requested_by="manage.py verify_ledger")
        if run.ok:
            self.stdout.write(f"OK: {run.size} entries and {run.heads_checked} signed tree heads verify "
                              f"({run.elapsed_s:.2f} s)")
            return
        self.stdout.write(f"FAIL at index {run.first_bad_index}: {run.problem}")
        raise SystemExit(1)
