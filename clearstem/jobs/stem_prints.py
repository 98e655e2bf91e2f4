"""Find a stem from a copy found in the wild.

A content credential travels inside the delivered file but not through a re-encode, a cut or
an overdub. So every stem the platform makes is fingerprinted when it is made, with both of
identification's prints (Chromaprint for re-encodes and excerpts; the spectral-peak landmarks
that find songs inside mixtures for a stem under other audio, `fingerprint.stems`), into stems
indexes of their own (`fingerprint.services.stem_stores`), kept apart from the catalog's. Dropping a
file on the audit page (or `POST /api/v1/audit/find/`) looks it up three ways, strongest first:
its bytes (a stem or a delivered rendition, unchanged), its embedded C2PA manifest, its sound.
"""
from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db.models import Q

from fingerprint.landmarks import pack_print
from fingerprint.scan import AudioError, scan_audio
from fingerprint.services import find_copies, stem_stores, sync_item_index, sync_print_index
from fingerprint.stems import RHYTHM_STEMS
from provenance.credentials import Credentials
from provenance.services import read_content_credentials
from separation.registry import get_engine
from separation.run import separate_file
from sharedcore.errors import DomainError
from sharedcore.hashing import file_sha256

from ..storage import local_path
from .models import Stem, StemFingerprint

log = logging.getLogger("clearstem.jobs")
#: Sound matches listed (best first).
MAX_SOUND_MATCHES = 20


def stem_prints(path) -> dict | None:
    """A stem file's prints (StemFingerprint fields: Chromaprint `items`, `landmarks`), or None
    when they cannot be made (logged: the stem stays valid, only unfindable by sound)."""
    try:
        scan = scan_audio(str(path), landmarks="reference")
    except AudioError as exc:
        log.warning("no prints for stem file %s: %s", path, exc)
        return None
    return {"items": scan.fingerprint.astype("<u4").tobytes(), "landmarks": pack_print(*scan.landmarks)}


def sync_stem_indexes():
    """(Chromaprint, landmark) indexes of the stems, brought in line with the database."""
    cp_store, lm_store = stem_stores()
    rows = StemFingerprint.objects.all()
    return sync_item_index(cp_store, rows), sync_print_index(lm_store, rows)


@dataclass
class SoundMatch:
    stem: Stem
    evidence: dict  # `fingerprint.stems.rank_stem_matches`: decided_by, score, segments, each matcher's row


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
    #: the query prints of the file's separated views that were matched too (`separated_views`)
    views: dict = field(default_factory=dict, repr=False)

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
    cp_index, lm_index = sync_stem_indexes()
    if len(lm_index):  # no stems printed yet: nothing a view could find
        found.views = separated_views(path, scan.duration_s)
    ranked = find_copies(cp_index, lm_index, scan.fingerprint, scan.landmarks, found.views, rhythm_stem_keys)
    stem_of = dict(StemFingerprint.objects.filter(id__in=[k for k, _ in ranked]).values_list("id", "stem_id"))
    visible = {s.pk: s for s in stems.filter(pk__in=stem_of.values())}
    for key, evidence in ranked:
        stem = visible.get(stem_of.get(key))
        if stem is not None and len(found.sound) < MAX_SOUND_MATCHES:
            found.sound.append(SoundMatch(stem, evidence))
    return found


def rhythm_stem_keys(keys) -> set[int]:
    """Which of the stem-print ids `keys` print a rhythm stem (`fingerprint.stems.RHYTHM_STEMS`)."""
    return set(StemFingerprint.objects.filter(id__in=keys, stem__name__in=RHYTHM_STEMS).values_list("id", flat=True))


#: The engine that splits a dropped file into views: weights-free, deterministic (a 20 s MP3 in
#: 2 s on 2 cores), and the same on every deployment (a neural engine's views would depend on
#: which weights an operator installed).
VIEW_ENGINE = "dsp"


def separated_views(path, duration_s: float) -> dict[str, tuple]:
    """Landmark query prints of the file's separated parts, by stem name (`fingerprint.stems`:
    a stem under louder music keeps more of its peaks in the part that holds it). Empty for
    files longer than CLEARSTEM_FIND_VIEWS_MAX_SECONDS: the copy itself is still matched."""
    if duration_s > settings.CLEARSTEM_FIND_VIEWS_MAX_SECONDS:
        return {}
    with tempfile.TemporaryDirectory(prefix="clearstem-views-") as tmp:
        outputs, _ = separate_file(get_engine(VIEW_ENGINE), path, Path(tmp), fmt="wav", bits=16)
        views = {}
        for out in outputs:
            try:
                views[out.name] = scan_audio(str(out.path), landmarks="query").landmarks
            except AudioError:  # a silent part: nothing to match
                continue
        return views


def do_backfill_stem_prints(limit: int | None = None) -> tuple[int, list[tuple[str, str]]]:
    """Prints for stems made before stems were fingerprinted (or whose print failed): (done,
    [(stem id, why) failed]). Each stem is read from storage and its row added on its own."""
    todo = Stem.objects.filter(fingerprint__isnull=True).order_by("created_at")
    done, failed = 0, []
    for stem in todo[:limit] if limit else todo:
        with local_path(stem.file.name) as path:
            prints = stem_prints(path)
        if prints is None:
            failed.append((str(stem.pk), "the stem file could not be decoded"))
            continue
        StemFingerprint.objects.get_or_create(stem=stem, defaults=prints)
        done += 1
    return done, failed
