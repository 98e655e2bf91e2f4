"""`manage.py verify_ledger [--against CHECKPOINT ...]`: recompute every leaf, node and root and
check every signature; with --against, also prove the log consistent with earlier checkpoints.

Exits 1 naming the first bad index (or the checkpoint the log no longer extends); 0 when the
whole log verifies. The verdict is kept, so auditors see when the ledger was last fully
verified and what it showed. A CHECKPOINT is a C2SP checkpoint text: a file, an http(s) URL,
or a name under the publication prefix (CLEARSTEM_CHECKPOINT_PREFIX, e.g. `12-ab34….txt`)."""
from django.core.management.base import BaseCommand, CommandError

from provenance.audit import do_verify_ledger
from provenance.publication import load_checkpoint
from sharedcore.errors import DomainError


class Command(BaseCommand):
    help = "Verify the whole provenance ledger (and its consistency with earlier checkpoints); non-zero exit on any fault."

    def add_arguments(self, parser):
        parser.add_argument("--against", action="append", default=[], metavar="CHECKPOINT",
                            help="an earlier signed checkpoint (file, http(s) URL, or published name) the log "
                                 "must extend; repeatable")

    def handle(self, against, **_):
        try:
            checkpoints = [(source, load_checkpoint(source)) for source in against]
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from exc
        command = " ".join(["manage.py verify_ledger", *(f"--against {s}" for s in against)])
        run = do_verify_ledger(requested_by=command, checkpoints=checkpoints)
        if run.ok:
            consistent = f"; consistent with {len(checkpoints)} earlier checkpoint(s)" if checkpoints else ""
            self.stdout.write(f"OK: {run.size} entries and {run.heads_checked} signed tree heads verify "
                              f"({run.elapsed_s:.2f} s){consistent}")
            return
        where = f" at index {run.first_bad_index}" if run.first_bad_index is not None else ""
        self.stdout.write(f"FAIL{where}: {run.problem}")
        raise SystemExit(1)
