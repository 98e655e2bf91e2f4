"""`manage.py catalog_ingest PATH... --label SLUG [--metadata CSV]`.

Files or folders; keeps going past bad files and reports them at the end (exit 1 if any).
Re-ingesting the same audio or ISRC is reported as existing, not duplicated.
"""
import csv
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from clearstem.accounts.models import Organisation
from fingerprint.catalog import do_register_recording
from fingerprint.services import sync_indexes
from sharedcore.errors import DomainError
from sharedcore.media import KNOWN_EXTENSIONS

#: Files registered between two updates of the identification index.
SYNC_EVERY = 500


class Command(BaseCommand):
    help = "Register catalog recordings with reference audio."

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+")
        parser.add_argument("--label", required=True)
        parser.add_argument("--metadata", help="CSV with columns file, isrc, title, artist")

    def handle(self, paths, label, metadata, **_):
        org = Organisation.objects.filter(slug=label, kind=Organisation.Kind.LABEL).first()
        if org is None:
            raise CommandError(f"no label organisation {label!r}")
        meta = {}
        if metadata:
            with open(metadata, newline="") as fh:
                for row in csv.DictReader(fh):
                    meta[os.path.basename(row.get("file", ""))] = row
        files = []
        for p in map(Path, paths):
            if p.is_dir():
                files += sorted(f for f in p.rglob("*") if f.suffix.lower() in KNOWN_EXTENSIONS)
            else:
                files.append(p)
        created = existing = 0
        errors = []
        for i, f in enumerate(files, 1):
            row = meta.get(f.name, {})
            try:
                rec, new = do_register_recording(org, str(f), f.name, title=row.get("title") or f.stem,
                                                 artist=row.get("artist", ""), isrc=row.get("isrc") or None,
                                                 sync_index=False)
            except DomainError as exc:
                errors.append((f, exc.code, str(exc.detail)))
                self.stdout.write(f"[{i}/{len(files)}] {f}: ERROR {exc.code}: {exc.detail}")
                continue
            except OSError as exc:  # in words: no errno number
                detail = "file not found" if isinstance(exc, FileNotFoundError) else (exc.strerror or "cannot be read").lower()
                errors.append((f, "unreadable", detail))
                self.stdout.write(f"[{i}/{len(files)}] {f}: ERROR unreadable: {detail}")
                continue
            created += new
            existing += not new
            self.stdout.write(f"[{i}/{len(files)}] {f}: {'registered' if new else 'already registered'} {rec.id}")
            if created and created % SYNC_EVERY == 0 and new:
                sync_indexes()  # long ingests become identifiable as they go
        if created:
            sync_indexes()
        self.stdout.write(f"done: {created} registered, {existing} already registered, {len(errors)} failed")
        for f, code, detail in errors:
            self.stdout.write(f"  failed: {f}: {code}: {detail}")
        if errors:
            raise SystemExit(1)
