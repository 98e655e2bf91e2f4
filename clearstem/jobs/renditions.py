"""Stems as delivered: encoded in the format asked for (`sharedcore.media.DELIVERY_FORMATS`) and
carrying their provenance as a signed C2PA manifest (`provenance.credentials`).

A rendition is made once per (stem, format) and kept: C2PA signatures carry a time, so signing
again would give other bytes, and the ledger records the hash of what was handed out. Making one
costs an encode and a signature, so callers check the rights first (`do_deliver_stem`).
"""
from __future__ import annotations

import tempfile
import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction

from provenance.services import embed_content_credentials
from sharedcore.hashing import file_sha256
from sharedcore.media import DELIVERY_FORMATS, delivery_bits, encode_delivery, extension_for

from ..storage import delete_quietly, local_path
from .models import Stem, StemRendition

#: MIME type of the upload by the container our decoder found, for the parent ingredient.
_UPLOAD_MIME = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg", "m4a": "audio/mp4"}


def delivery_name(stem: Stem, fmt: str) -> str:
    """The file name a user gets: `<stem>-<job prefix>.<ext>` (16-bit and 24-bit WAV say so)."""
    suffix = {"wav16": "-16bit", "wav24": "-24bit"}.get(fmt, "")
    return f"{stem.name}-{str(stem.job_id)[:8]}{suffix}{DELIVERY_FORMATS[fmt][3]}"


def rendition_of(stem: Stem, fmt: str) -> StemRendition:
    """The stem in format `fmt` with its content credentials, made now if it was not yet."""
    existing = StemRendition.objects.filter(stem=stem, format=fmt).first()
    if existing is not None and default_storage.exists(existing.file.name):
        return existing
    upload = stem.job.upload
    with tempfile.TemporaryDirectory(prefix="clearstem-rendition-") as tmp:
        ext = DELIVERY_FORMATS[fmt][3]
        encoded, signed = Path(tmp) / f"encoded{ext}", Path(tmp) / f"signed{ext}"
        with local_path(stem.file.name) as master:
            encode_delivery(master, encoded, fmt, stem.bits_per_sample, seed=stem.id.int & 0xFFFFFFFF)
        credentials = settings.CLEARSTEM_C2PA
        if credentials:
            container = extension_for(upload.container).lstrip(".")
            with local_path(upload.file.name) as up:
                parent = (up, _UPLOAD_MIME[container], upload.original_name) if container in _UPLOAD_MIME else None
                embed_content_credentials(stem, encoded, signed, fmt, delivery_name(stem, fmt), parent=parent)
        else:
            signed = encoded
        name = f"renditions/{stem.id}/{uuid.uuid4().hex}{ext}"
        with open(signed, "rb") as fh:
            name = default_storage.save(name, fh)
        sha, size = file_sha256(signed), signed.stat().st_size
    try:
        with transaction.atomic():
            if existing is not None:  # its file was lost: replace the row
                existing.delete()
            return StemRendition.objects.create(stem=stem, format=fmt, file=name, sha256=sha, size=size,
                                                bits_per_sample=delivery_bits(fmt, stem.bits_per_sample),
                                                content_credentials=credentials)
    except IntegrityError:  # another request made it at the same time: use theirs
        delete_quietly([name])
        return StemRendition.objects.get(stem=stem, format=fmt)
