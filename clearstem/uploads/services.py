"""Uploads: probe, hash and fingerprint in one decoding pass, then store — or refuse with a
code and leave nothing behind; then identify the upload against the catalog, once."""
from __future__ import annotations

import os
import uuid

import numpy as np
from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from clearstem.messaging import send_on_commit
from clearstem.storage import delete_quietly, storage_name
from fingerprint.catalog import scan_or_refuse
from fingerprint.landmarks import pack_print, unpack_print
from fingerprint.scan import QUERY_VARIANTS, pack_variants, unpack_variants
from fingerprint.services import identify_fingerprint
from sharedcore.errors import DomainError
from sharedcore.hashing import file_sha256

from .dispatch import send_identify_upload
from .models import Upload


def do_create_upload(user, uploaded_file) -> Upload:
    if uploaded_file is None:
        raise DomainError("invalid", "send the audio as multipart field 'file'")
    if uploaded_file.size == 0:
        raise DomainError("empty_file", "the uploaded file is empty")
    if uploaded_file.size > settings.CLEARSTEM_MAX_UPLOAD_BYTES:
        raise DomainError("too_large", "the upload exceeds the size limit")
    path = uploaded_file.temporary_file_path()
    scan = scan_or_refuse(path, QUERY_VARIANTS if settings.CLEARSTEM_MATCH_SPEED_VARIANTS else (), landmarks="query")
    sha256 = getattr(uploaded_file, "sha256", None) or file_sha256(path)
    upload_id = uuid.uuid4()
    name = default_storage.save(storage_name("uploads", upload_id, scan.container), uploaded_file)
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
                landmarks=pack_print(*scan.landmarks) if scan.landmarks else b"",
            )
            send_on_commit(send_identify_upload, upload.id)
    except BaseException:
        delete_quietly([name])
        raise
    return upload


def do_identify_upload(upload_id) -> Upload:
    """Idempotent: an upload is identified once; its evidence is kept for audit."""
    with transaction.atomic():
        upload = Upload.objects.select_for_update().get(pk=upload_id)
        if upload.identification_status == Upload.Identification.DONE:
            return upload
        items = np.frombuffer(bytes(upload.fingerprint), dtype="<u4")
        # uploads stored before the grid was split hold all 12 query variants: the reference
        # speeds now cover the rest of the grid, and more pairs would only widen it
        variants = [(1.0, items), *((f, v) for f, v in unpack_variants(bytes(upload.fingerprint_variants or b""))
                                    if f in QUERY_VARIANTS)]
        upload.identification = identify_fingerprint(items, variants, upload.peak_dbfs,
                                                     _landmark_print(bytes(upload.landmarks or b"")))
        upload.identification_status = Upload.Identification.DONE
        upload.identified_at = timezone.now()
        upload.save(update_fields=["identification", "identification_status", "identified_at"])
        return upload


def _landmark_print(blob: bytes):
    """The upload's stored landmark print, or None (uploads from before landmarks, or a print
    of an older version: Chromaprint alone judges those, and the evidence says so)."""
    if not blob:
        return None
    try:
        print_ = unpack_print(blob)
    except ValueError:
        return None
    return print_ if print_[0] == "query" else None
