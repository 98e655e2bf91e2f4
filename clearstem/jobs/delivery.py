"""Handing out stems: one at a time (download, preview) or a finished job as a zip. Each is
judged now by the licensing meter against the terms its job ran under."""
from __future__ import annotations

import json
import shutil
import tempfile
import zipfile

from django.core.files.storage import default_storage
from django.db import transaction

from licensing.metering import Delivery, check_preview, do_meter_delivery
from licensing.models import UsageEvent
from provenance.services import stem_bundle
from sharedcore.errors import Conflict

from .models import Job, Stem


def delivery_of(stem: Stem) -> Delivery:
    job = stem.job
    return Delivery(stem_id=str(stem.id), stem_name=stem.name, stem_sha256=stem.sha256, job_id=str(job.id),
                    decision=job.decision or {}, purpose=job.purpose, commercial=job.commercial,
                    territory=job.territory)


def do_authorize_download(user, stem: Stem, kind: str = UsageEvent.Kind.DOWNLOAD) -> None:
    """Meter one delivery of `stem` to `user` (refused with the license's reason)."""
    do_meter_delivery(user, delivery_of(stem), kind)


def check_stem_preview(user, stem: Stem) -> None:
    check_preview(user, delivery_of(stem))


def do_export_job(user, job_id):
    """A zip of a finished job's stems with their provenance bundles and a manifest.

    Every stem is checked and metered as an export, all or nothing, and each export is appended
    to the ledger. Returns an open temporary file positioned at the start.
    """
    job = Job.objects.get(pk=job_id)
    if job.state != Job.State.DONE:
        raise Conflict("job_not_done", f"the job is {job.state}; only finished jobs can be exported")
    stems = list(job.stem_files.select_related("provenance__ledger_entry", "job"))
    with transaction.atomic():
        for stem in stems:
            do_meter_delivery(user, delivery_of(stem), UsageEvent.Kind.EXPORT)
    out = tempfile.SpooledTemporaryFile(max_size=64 << 20)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zf:
        manifest = {"job": str(job.id), "upload_sha256": job.upload.sha256, "stems": []}
        for stem in stems:
            name = f"{stem.name}.{stem.format}"
            with default_storage.open(stem.file.name, "rb") as src, zf.open(name, "w", force_zip64=True) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            zf.writestr(f"{stem.name}.provenance.json", json.dumps(stem_bundle(stem), indent=2))
            manifest["stems"].append({"name": stem.name, "file": name, "sha256": stem.sha256,
                                      "bundle": f"{stem.name}.provenance.json"})
        zf.writestr("manifest.json", json.dumps(manifest, indent=2))
    out.seek(0)
    return out
