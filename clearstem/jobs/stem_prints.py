"""Find a stem from a copy found in the wild.

A content credential travels inside the delivered file but not through a re-encode, a cut or
an overdub. So every stem the platform makes is landmark-printed when it is made (the spectral-
peak print that finds catalog songs inside mixtures, `fingerprint.landmarks`) into a stems
index of its own (`fingerprint.services.stem_store`), kept apart from the catalog's. Dropping a
file on the audit page (or `POST /api/v1/audit/find/`) looks it up three ways, strongest first:
its bytes (a stem or a delivered rendition, unchanged), its embedded C2PA manifest, its sound.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q

from fingerprint.landmarks import pack_print
from fingerprint.scan import AudioError, scan_audio
from fingerprint.services import match_print, stem_store, sync_print_index
from provenance.credentials import Credentials
from provenance.services import read_content_credentials
from sharedcore.errors import DomainError
from sharedcore.hashing import file_sha256

from .models import Stem, StemFingerprint

log = logging.getLogger("clearstem.jobs")
#: Sound matches listed (best first).
MAX_SOUND_MATCHES = 20


def stem_print(path) -> bytes | None:
    """The landmark print of a stem file, or None when it cannot be made (logged: the stem stays
    valid, only unfindable by sound until `manage.py backfill_stem_prints`)."""
    try:
        scan = scan_audio(str(path), landmarks="reference")
    except AudioError as exc:
        log.warning("no landmark print for stem file %s: %s", path, exc)
        return None
    return pack_print(*scan.landmarks)


def sync_stem_index():
    return sync_print_index(stem_store(), StemFingerprint.objects.all())


@dataclass
class SoundMatch:
    stem: Stem
    evidence: dict  # the landmark match (`LandmarkMatch.as_dict`, key dropped)


@dataclass
class Findings:
    """What a dropped file leads to: stems with the same bytes (master or a delivered
    rendition), the stem its content credentials name, stems that sound like it."""
    sha256: str
    exact: list[Stem] = field(default_factory=list)
    credentials: Credentials | None = None
    credentials_stem: Stem | None = None
    sound: list[SoundMatch] = field(default_factory=list)
    seconds: float = 0.0

    def stems(self) -> list[Stem]:
        """Every stem found, each once, strongest evidence first."""
        seen, out = set(), []
        for stem in [*self.exact, *([self.credentials_stem] if self.credentials_stem else []),
                     *(m.stem for m in self.sound)]:
            if stem.pk not in seen:
                seen.add(stem.pk)
                out.append(stem)
        return out


def find_stems_by_file(stems, uploaded_file) -> Findings:
    """`find_stems` for a file sent to the API or the audit page (kept only while it runs)."""
    if uploaded_file is None:
        raise DomainError("invalid", "send the file as multipart field 'file'")
    if uploaded_file.size == 0:
        raise DomainError("empty_file", "the file is empty")
    if uploaded_file.size > settings.CLEARSTEM_MAX_UPLOAD_BYTES:
        raise DomainError("too_large", "the file exceeds the size limit")
    return find_stems(stems, uploaded_file.temporary_file_path())


def find_stems(stems, path) -> Findings:
    """Look the file at `path` up (see the module docstring) among `stems`, the queryset of stems
    the asking user may trace (`scoping.findable_stems`). Raises AudioError (not_audio,
    corrupt_audio, too_long) for a file that is not usable audio."""
    sha = file_sha256(path)
    found = Findings(sha256=sha)
    found.exact = list(stems.filter(Q(sha256=sha) | Q(renditions__sha256=sha)).distinct())
    found.credentials = read_content_credentials(path)
    creds = found.credentials
    if creds and creds.found and creds.clearstem:
        found.credentials_stem = stems.filter(pk=(creds.clearstem.get("stem") or {}).get("id")).first()
    scan = scan_audio(str(path), max_seconds=settings.CLEARSTEM_MAX_UPLOAD_SECONDS, landmarks="query")
    found.seconds = scan.duration_s
    index = sync_stem_index()
    if len(index):
        matches, _ = match_print(index, scan.landmarks)
        by_key = {m.key: m for m in matches[:MAX_SOUND_MATCHES * 2]}
        prints = StemFingerprint.objects.filter(id__in=by_key).values_list("id", "stem_id")
        visible = {s.pk: s for s in stems.filter(pk__in=[sid for _, sid in prints])}
        for pid, sid in prints:
            if sid in visible:
                ev = {k: v for k, v in by_key[pid].as_dict().items() if k != "key"}
                found.sound.append(SoundMatch(visible[sid], ev))
        found.sound.sort(key=lambda m: -m.evidence["score"])
        del found.sound[MAX_SOUND_MATCHES:]
    return found
