"""`manage.py identify FILE... --json`: one JSON line per file; the index loads once."""
import json
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from fingerprint.scan import QUERY_VARIANTS, AudioError, check_identifiable, scan_audio
from fingerprint.services import identify_query, sync_indexes


class Command(BaseCommand):
    help = "Identify audio files against the catalog."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+")
        parser.add_argument("--json", action="store_true", dest="as_json", help="one JSON object per line")

    def handle(self, files, as_json: bool, **_):
        sync_indexes()  # open (and if needed update) the indexes once for the whole batch
        speeds = QUERY_VARIANTS if settings.CLEARSTEM_MATCH_SPEED_VARIANTS else ()
        failures = 0
        for path in files:
            t0 = time.perf_counter()
            try:
                scan = scan_audio(path, max_seconds=settings.CLEARSTEM_MAX_UPLOAD_SECONDS, speed_variants=speeds,
                                  landmarks="query" if settings.CLEARSTEM_LANDMARKS else None)
                check_identifiable(scan, settings.CLEARSTEM_MATCH_MIN_SECONDS)
                found = identify_query(scan.variants, scan.landmarks)
                row = {"file": path, "matches": [
                    {k: m[k] for k in ("isrc", "recording", "title", "score", "query_start_s", "ref_start_s",
                                       "duration_s", "speed", "decided_by")}
                    for m in found.matches
                ], "suspects": [{k: m[k] for k in ("isrc", "recording", "title", "score", "decided_by", "reason")}
                                for m in found.suspects]}
            except AudioError as exc:
                failures += 1
                row = {"file": path, "error": exc.code, "detail": str(exc), "matches": []}
            except OSError as exc:  # in words: no errno number, no exception class
                failures += 1
                row = {"file": path, "error": "unreadable",
                       "detail": f"cannot read {path}: {(exc.strerror or 'input/output error').lower()}", "matches": []}
            row["elapsed_ms"] = round((time.perf_counter() - t0) * 1000, 1)
            if as_json:
                self.stdout.write(json.dumps(row, separators=(",", ":")))
            elif "error" in row:  # said, and on to the next file
                detail = row["detail"]
                self.stderr.write(detail if path in detail else f"{path}: {detail}")
            else:
                found = ", ".join(f"{m['title']} ({m['score']:.2f})" for m in row["matches"]) or "no match"
                self.stdout.write(f"{path}: {found}")
        if failures:
            self.stderr.write(f"{failures} of {len(files)} files could not be identified")
            raise SystemExit(1)
