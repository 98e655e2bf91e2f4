"""`manage.py identify FILE... --json`: one JSON line per file; the index loads once."""
import json
import time

from django.core.management.base import BaseCommand

from fingerprint.scan import AudioError, scan_audio
from fingerprint.services import catalog_index, identify_items


class Command(BaseCommand):
    help = "Identify audio files against the catalog."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+")
        parser.add_argument("--json", action="store_true", dest="as_json", help="one JSON object per line")

    def handle(self, files, as_json: bool, **_):
        catalog_index()  # load once for the whole batch
        failures = 0
        for path in files:
            t0 = time.perf_counter()
            try:
                matches = identify_items(scan_audio(path).fingerprint)
                row = {"file": path, "matches": [
                    {k: m[k] for k in ("isrc", "recording", "title", "score", "query_start_s", "ref_start_s", "duration_s")}
                    for m in matches
                ]}
            except (AudioError, OSError) as exc:
                failures += 1
                row = {"file": path, "error": getattr(exc, "code", "unreadable"), "detail": str(exc), "matches": []}
            row["elapsed_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            if as_json:
                self.stdout.write(json.dumps(row, separators=(",", ":")))
            else:
                found = ", ".join(f"{m['title']} ({m['score']:.2f})" for m in row["matches"]) or row.get("error", "no match")
                self.stdout.write(f"{path}: {found}")
        if failures:
            raise SystemExit(1)
