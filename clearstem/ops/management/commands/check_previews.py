"""`manage.py check_previews [--repair]`: kept previews (uploads, stems, catalog excerpts) that
cannot be decoded or play shorter than what they preview (`clearstem.preview_check`)."""
from django.core.management.base import BaseCommand

from clearstem.preview_check import do_check_previews


class Command(BaseCommand):
    help = ("Decode every kept preview and list those cut short or unreadable; with --repair make them "
            "again from their sources. Exit 1 while any damaged preview remains.")

    def add_arguments(self, parser):
        parser.add_argument("--repair", action="store_true", help="make damaged previews again")

    def handle(self, repair, **_):
        checked, findings = do_check_previews(repair=repair)
        left = [f for f in findings if not f.repaired]
        self.stdout.write(f"{checked} previews checked, {len(findings)} damaged, "
                          f"{len(findings) - len(left)} made again")
        for f in findings:
            plays = "does not decode" if f.found_s is None else f"plays {f.found_s:.1f} s"
            state = "made again" if f.repaired else (f"not made again: {f.error}" if f.error else "left as it is")
            self.stdout.write(f"  {f.kind} {f.name}: {plays} of {f.expected_s:.1f} s; {state}")
        if left:
            raise SystemExit(1)
