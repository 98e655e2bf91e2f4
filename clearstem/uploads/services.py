"""Uploads: probe, hash and fingerprint in one decoding pass, then store — or refuse with a
code and leave nothing behind."""
from __future__ import annotations

import os
import uuid

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from rest_framework import status

from clearstem.api.errors import ApiError
from sharedcore.hashing import file_sha256
from clearstem.storage import delete_quietly
from fingerprint.scan import SPEED_VARIANTS, AudioError, check_identifiable, pack_variants, scan_audio

from .models import Upload

AUDIO_STATUS = {
    "not_audio": status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
    "corrupt_audio": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "too_long": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "too_short": status.HTTP_422_UNPROCESSABLE_ENTITY,
    "silent": status.HTTP_422_UNPROCESSABLE_ENTITY,
}
KNOWN_EXTENSIONS = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".m4a", ".aac", ".wma", ".webm"}


def scan_or_refuse(path: str, speed_variants=()):
    """Scan audio for identification, or raise ApiError: not audio, corrupt, too long, and also
    silent or too short to identify (see fingerprint.scan.check_identifiable)."""
    try:
        scan = scan_audio(path, max_seconds=settings.CLEARSTEM_MAX_UPLOAD_SECONDS, speed_variants=speed_variants)
        check_identifiable(scan, settings.CLEARSTEM_MATCH_MIN_SECONDS)
        return scan
    except AudioError as exc:
        raise ApiError(exc.code, exc.detail, AUDIO_STATUS.get(exc.code, 422)) from exc


def storage_name(prefix: str, object_id, original_name: str, container: str) -> str:
    ext = os.path.splitext(original_name)[1].lower()
    if ext not in KNOWN_EXTENSIONS:
        ext = f".{container}" if container.isalnum() else ".bin"
    return f"{prefix}/{object_id}{ext}"


def do_create_upload(user, uploaded_file) -> Upload:
    if uploaded_file is None:
        raise ApiError("invalid", "send the audio as multipart field 'file'")
    if uploaded_file.size == 0:
        raise ApiError("empty_file", "the uploaded file is empty")
    if uploaded_file.size > settings.CLEARSTEM_MAX_UPLOAD_BYTES:
        raise ApiError("too_large", "the upload exceeds the size limit", status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    path = uploaded_file.temporary_file_path()
    scan = scan_or_refuse(path, SPEED_VARIANTS if settings.CLEARSTEM_MATCH_SPEED_VARIANTS else ())
    sha256 = getattr(uploaded_file, "sha256", None) or file_sha256(path)
    upload_id = uuid.uuid4()
    name = default_storage.save(storage_name("uploads", upload_id, uploaded_file.name, scan.container), uploaded_file)
    try:
        with transaction.atomic():
            upload = Upload.objects.create(
                id=upload_id, owner=user, organisation=user.organisation, file=name,
                original_name=os.path.basename(uploaded_file.name)[:255], size=uploaded_file.size, sha256=sha256,
                container=scan.container, codec=scan.codec, sample_rate=scan.sample_rate, channels=scan.channels,
                bits_per_sample=scan.bits_per_sample, duration_s=scan.duration_s,
                peak_dbfs=scan.peak_dbfs if scan.peak_dbfs > -1e9 else None,
                fingerprint=scan.fingerprint.astype("<u4").tobytes(), fingerprint_algorithm=scan.fingerprint_algorithm,
                fingerprint_variants=pack_variants(scan.variants[1:]),
            )
            from clearstem.jobs.dispatch import send_on_commit
            from fingerprint.dispatch import send_identify_upload

            send_on_commit(send_identify_upload, upload.id)
    except BaseException:
        delete_quietly([name])
        raise
    return upload
