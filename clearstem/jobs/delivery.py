"""Handing out stems: one at a time (download, preview) or a finished job as a zip, in the
format asked for. Each is judged now by the licensing meter against the terms its job ran
under, and the ledger records the hash of the file as delivered (its rendition)."""
from __future__ import annotations

import json
import shutil
import tempfile
import zipfile

from django.core.files.storage import default_storage
from django.db import transaction

from licensing.metering import Delivery, check_delivery, check_preview, do_meter_delivery
from licensing.models import UsageEvent
from provenance.services import stem_bundle
from sharedcore.errors import Conflict, DomainError
from sharedcore.media import DeliveryFormatError, delivery_format

from .models import Job, Stem, StemRendition
from .renditions import delivery_name, rendition_of


class BadFormat(DomainError):
    """An unknown delivery format was asked for."""


def requested_format(name: str | None) -> str:
    try:
        return delivery_format(name)
    except DeliveryFormatError as exc:
        raise BadFormat("bad_format", str(exc)) from None


def delivery_of(stem: Stem, rendition: StemRendition | None = None) -> Delivery:
    job = stem.job
    delivered = ({"format": rendition.format, "sha256": rendition.sha256, "size": rendition.size,
                  "content_credentials": rendition.content_credentials} if rendition else None)
    return Delivery(stem_id=str(stem.id), stem_name=stem.name, stem_sha256=stem.sha256, job_id=str(job.id),
                    decision=job.decision or {}, purpose=job.purpose, commercial=job.commercial,
                    territory=job.territory, delivered=delivered)


def do_deliver_stem(user, stem: Stem, fmt: str | None = None,
                    kind: str = UsageEvent.Kind.DOWNLOAD) -> StemRendition:
    """Hand `stem` to `user` in `fmt`: refused with the license's reason before any work, then
    the rendition (made once), then metered and ledgered with the delivered file's hash."""
    fmt = requested_format(fmt)
    check_delivery(user, delivery_of(stem), "export" if kind == UsageEvent.Kind.EXPORT else "download")
    rendition = rendition_of(stem, fmt)
    do_meter_delivery(user, delivery_of(stem, rendition), kind)
    return rendition


def download_refusal(user, stem: Stem) -> DomainError | None:
    """Why `user` could not download `stem` now (license revoked, suspended, expired, cap used,
    territory...), or None: pages show the reason instead of a button that cannot work."""
    try:
        check_delivery(user, delivery_of(stem), "download")
    except DomainError as exc:
        return exc
    return None


def check_stem_preview(user, stem: Stem) -> None:
    check_preview(user, delivery_of(stem))


def do_export_job(user, job_id, fmt: str | None = None):
    """A zip of a finished job's stems in `fmt` with their provenance bundles and a manifest.

    Every stem is checked before any rendition is made, then metered as an export, all or
    nothing, and each export is appended to the ledger with its file's hash. Returns an open
    temporary file positioned at the start.
    """
    fmt = requested_format(fmt)
    job = Job.objects.get(pk=job_id)
    if job.state != Job.State.DONE:
        raise Conflict("job_not_done", f"the job is {job.state}; only finished jobs can be exported")
    stems = list(job.stem_files.select_related("provenance__ledger_entry", "job__upload"))
    for stem in stems:
        check_delivery(user, delivery_of(stem), "export")
    renditions = {stem.id: rendition_of(stem, fmt) for stem in stems}
    with transaction.atomic():
        for stem in stems:
            do_meter_delivery(user, delivery_of(stem, renditions[stem.id]), UsageEvent.Kind.EXPORT)
    out = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        manifest = {"job": str(job.id), "upload_sha256": job.upload.sha256, "format": fmt, "stems": []}
        for stem in stems:
            rendition = renditions[stem.id]
            name = delivery_name(stem, fmt)
            with default_storage.open(rendition.file.name, "rb") as src, zf.open(name, "w", force_zip64=True) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            zf.writestr(f"{stem.name}.provenance.json", json.dumps(stem_bundle(stem), indent=2))
            manifest["stems"].append({"name": stem.name, "file": name, "sha256": rendition.sha256,
                                      "master_sha256": stem.sha256, "content_credentials": rendition.content_credentials,
                                      "bundle": f"{stem.name}.provenance.json"})
        zf.writestr("manifest.json", json.dumps(manifest, indent=2))
    out.seek(0)
    return out
