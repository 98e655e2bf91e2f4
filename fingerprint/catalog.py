"""The catalog: labels register recordings with reference audio (fingerprinted here, so the
identification index knows them) and take them out again."""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q

from clearstem.storage import delete_quietly, storage_name
from licensing.isrc import normalise_isrc
from licensing.models import Recording
from sharedcore.errors import Conflict, DomainError, NotFound
from sharedcore.hashing import file_sha256

from .landmarks import PRINT_VERSION, pack_print, unpack_print
from .models import ReferenceFingerprint
from .scan import REFERENCE_SPEEDS, AudioScan, check_identifiable, pack_variants, scan_audio, unpack_variants
from .services import sync_indexes

logger = logging.getLogger(__name__)


def scan_or_refuse(path: str, speed_variants=(), landmarks: str | None = None, reference_speeds=()) -> AudioScan:
    """Scan audio for identification, or raise AudioError (a DomainError): not audio, corrupt,
    too long, and also silent or too short to identify (see fingerprint.scan.check_identifiable).
    `landmarks` ("reference" / "query") adds the landmark print when landmarks are enabled."""
    scan = scan_audio(path, max_seconds=settings.CLEARSTEM_MAX_UPLOAD_SECONDS, speed_variants=speed_variants,
                      landmarks=landmarks if settings.CLEARSTEM_LANDMARKS else None,
                      reference_speeds=reference_speeds)
    check_identifiable(scan, settings.CLEARSTEM_MATCH_MIN_SECONDS)
    return scan


def do_register_recording(label_org, uploaded_file_path: str, original_name: str, *, title: str = "",
                          artist: str = "", isrc: str | None = None, territories=None,
                          sync_index: bool = True) -> tuple[Recording, bool]:
    """Register a catalog recording with its reference audio. Idempotent: the same audio or
    ISRC returns the existing recording and False. Bulk ingest passes `sync_index=False` and
    updates the index once per batch."""
    try:
        isrc = normalise_isrc(isrc)
    except ValueError as exc:
        raise DomainError("invalid_isrc", str(exc)) from exc
    sha = file_sha256(uploaded_file_path)
    same = Q(rights_holder=label_org, audio_sha256=sha) | (Q(isrc=isrc) if isrc else Q(pk__in=[]))
    existing = Recording.objects.filter(same).first()
    if existing:
        if existing.rights_holder_id != label_org.id:
            raise Conflict("isrc_taken", f"ISRC {isrc} is registered by another rights holder")
        return existing, False
    scan = scan_or_refuse(uploaded_file_path, landmarks="reference", reference_speeds=REFERENCE_SPEEDS)
    rec_id = uuid.uuid4()
    with open(uploaded_file_path, "rb") as fh:
        name = default_storage.save(storage_name("references", rec_id, scan.container), fh)
    try:
        with transaction.atomic():
            rec = Recording.objects.create(
                id=rec_id, rights_holder=label_org, isrc=isrc, title=title or original_name, artist=artist,
                reference_audio=name, audio_sha256=sha, duration_s=scan.duration_s,
                territories=territories or ["WW"],
            )
            ReferenceFingerprint.objects.create(
                recording=rec, items=scan.fingerprint.astype("<u4").tobytes(),
                item_count=int(scan.fingerprint.size), algorithm=scan.fingerprint_algorithm,
                landmarks=pack_print(*scan.landmarks) if scan.landmarks else b"",
                speed_items=pack_variants(scan.speeds),
            )
    except IntegrityError as exc:
        delete_quietly([name])
        raise Conflict("duplicate_recording", "this recording is already registered") from exc
    except BaseException:
        delete_quietly([name])
        raise
    if sync_index:
        transaction.on_commit(_sync_index_quietly)
    return rec, True


def _sync_index_quietly() -> None:
    """Update the catalog index right after a catalog change, so the next identification does
    not pay for it. A failure here only delays that: identification syncs before matching."""
    try:
        sync_indexes()
    except Exception:  # noqa: BLE001 - logged; the index catches up on the next identification
        logger.exception("catalog index sync after a catalog change failed")


def do_remove_recording(label_org, recording_id) -> None:
    """Take a recording out of the catalog (and the identification index).

    A recording that any license names, or that was ever used, stays: grants, jobs and the
    ledger refer to it, and audit must be able to follow them.
    """
    with transaction.atomic():
        rec = Recording.objects.select_for_update().filter(pk=recording_id, rights_holder=label_org).first()
        if rec is None:
            raise NotFound("not_found", "no such recording in your catalog")
        if rec.grants.exists() or rec.usage.exists() or rec.reviews.exists():
            raise Conflict("recording_in_use", "licenses, usage or reviews refer to this recording; revoke instead of removing")
        name = rec.reference_audio.name
        rec.delete()
        transaction.on_commit(lambda: delete_quietly([name]))
        transaction.on_commit(_sync_index_quietly)


def _needs_landmarks(ref: ReferenceFingerprint) -> bool:
    try:
        return unpack_print(bytes(ref.landmarks))[0] != "reference"
    except ValueError:  # none yet, or an older version
        return True


def _needs_speeds(ref: ReferenceFingerprint) -> bool:
    return [s for s, _ in unpack_variants(bytes(ref.speed_items))] != list(REFERENCE_SPEEDS)


def do_backfill_prints(limit: int | None = None) -> tuple[int, list[tuple[str, str]]]:
    """Compute the prints a reference lacks from its stored reference audio — the landmark print
    (recordings registered before landmarks, or prints of an older PRINT_VERSION) and the
    Chromaprint items at the reference speeds (registered before the speed grid was split, or
    on another grid) — then update the indexes. Returns (references updated, [(recording id,
    error)])."""
    done, failed = 0, []
    todo = [r for r in ReferenceFingerprint.objects.select_related("recording").only(
        "id", "landmarks", "speed_items", "recording__id", "recording__reference_audio").order_by("id")
        if _needs_landmarks(r) or _needs_speeds(r)]
    for ref in todo[:limit]:
        name = ref.recording.reference_audio.name
        try:
            with default_storage.open(name, "rb") as src, tempfile.NamedTemporaryFile(
                    suffix=os.path.splitext(name)[1]) as tmp:
                shutil.copyfileobj(src, tmp)
                tmp.flush()
                scan = scan_audio(tmp.name, landmarks="reference", reference_speeds=REFERENCE_SPEEDS)
        except (OSError, DomainError) as exc:
            failed.append((str(ref.recording.id), f"{getattr(exc, 'code', 'unreadable')}: {exc}"))
            continue
        ReferenceFingerprint.objects.filter(pk=ref.pk).update(landmarks=pack_print(*scan.landmarks),
                                                               speed_items=pack_variants(scan.speeds))
        done += 1
    if done:
        sync_indexes()
    logger.info("print backfill (landmark print version %s, reference speeds %s): %s updated, %s failed",
                PRINT_VERSION, REFERENCE_SPEEDS, done, len(failed))
    return done, failed
