"""Audit pages (platform organisations, read-only): find a stem by id or by the file itself,
its chain checked live, ledger health, and the job monitor.

A stem's chain is the offline verifier's checks (`provenance.audit.stem_chain`), then the links
only the platform can show: each license version the job relied on (do its stored terms still
hash to the digest the job recorded?) and the ownership attestation's signature."""
from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from clearstem.accounts import scoping as scope
from clearstem.jobs.models import Stem
from clearstem.jobs.monitor import job_overview, queue_depths
from clearstem.uploads.models import Upload
from licensing.models import LicenseGrant
from provenance import ledger
from provenance.actors import verify_ledger
from provenance.audit import Chain, attestation_check, stem_chain
from provenance.models import LedgerEntry, LedgerVerification
from provenance.verify import Check
from sharedcore.hashing import file_sha256

from .. import present
from .common import persona

audit_page = persona("platform")


def _health():
    head = ledger.current_tree_head()
    last = LedgerVerification.objects.exclude(ok__isnull=True).first()
    running = LedgerVerification.objects.filter(ok__isnull=True,
                                                started_at__gte=timezone.now() - timedelta(hours=2)).first()
    return {"size": ledger.ledger_size(), "head": head, "head_dict": ledger.tree_head_dict(head), "last": last,
            "running": running}


def license_checks(decision: dict | None) -> tuple[list[Check], list[dict]]:
    """The license versions a job's decision relied on: a check each, and the grants as the
    page shows them ({...recorded grant, "obj": the LicenseGrant or None, "digest_matches"})."""
    checks, grants = [], []
    for g in (decision or {}).get("grants", []):
        grant = LicenseGrant.objects.filter(id=g["grant"]).select_related("licensor", "licensee_org").first()
        matches = grant is not None and grant.terms().digest() == g.get("terms_digest")
        grants.append({**g, "obj": grant, "digest_matches": matches})
        name = f"License terms v{g['version']}"
        checks.append(Check.passed(name, "the license version's terms still hash to the digest the job recorded")
                      if matches else Check.failed(name, "the stored terms no longer match the recorded digest"))
    return checks, grants


def audit_chain(stem) -> tuple[Chain, list[dict]]:
    """The stem's whole chain, checked now, and the license grants its job relied on."""
    chain = stem_chain(stem)
    job = stem.job
    checks, grants = license_checks(job.decision)
    chain.checks.extend(checks)
    if job.attestation:
        chain.checks.append(attestation_check(job.attestation))
    return chain, grants


@audit_page
def find(request):
    """Find a stem by its id, or by uploading the file (its SHA-256 is looked up, the file is
    not kept)."""
    ctx = {"health": _health(), "query": "", "results": None, "error": ""}
    if request.method == "POST" and request.FILES.get("file"):
        f = request.FILES["file"]
        sha = getattr(f, "sha256", None) or file_sha256(f.temporary_file_path())
        stems = list(scope.visible_stems(request.user).filter(sha256=sha))
        uploads = list(Upload.objects.filter(sha256=sha).prefetch_related("jobs__stem_files"))
        if len(stems) == 1 and not uploads:
            return redirect("web:audit-stem", stems[0].id)
        ctx.update(results={"sha256": sha, "name": f.name, "stems": stems, "uploads": uploads})
        if not stems and not uploads:
            ctx["error"] = f"No stem or upload has SHA-256 {sha}: this file did not come out of ClearStem unchanged."
    elif (q := request.GET.get("q", "").strip()):
        ctx["query"] = q
        try:
            stem = Stem.objects.filter(pk=uuid.UUID(q)).first()
        except ValueError:
            stem = None
            by_hash = list(Stem.objects.filter(sha256=q.lower())) if len(q) == 64 else []
            if len(by_hash) == 1:
                return redirect("web:audit-stem", by_hash[0].id)
        if stem:
            return redirect("web:audit-stem", stem.id)
        ctx["error"] = f"No stem with id or SHA-256 “{q}”."
    return render(request, "web/audit/find.html", ctx, status=404 if ctx["error"] else 200)


@audit_page
def stem_detail(request, stem_id):
    stem = get_object_or_404(Stem.objects.select_related("job__upload", "job__requested_by", "job__organisation",
                                                         "provenance__ledger_entry"), pk=stem_id)
    chain, grants = audit_chain(stem)
    job = stem.job
    return render(request, "web/audit/stem.html", {
        "stem": stem, "job": job, "upload": job.upload, "chain": chain, "record": chain.record, "grants": grants,
        "evidence": job.upload.identification, "explained": present.explain_decision(job),
        "matches": present.describe_matches(job.upload.identification.get("matches", [])),
        "siblings": job.stem_files.exclude(pk=stem.pk),
        "deliveries": LedgerEntry.objects.filter(subject=f"stem:{stem.id}").exclude(kind="stem").order_by("index"),
    })


@audit_page
def ledger_health(request):
    entries = LedgerEntry.objects.order_by("-index")[:25]
    return render(request, "web/audit/ledger.html", {
        "health": _health(), "entries": entries, "runs": LedgerVerification.objects.all()[:10],
    })


@audit_page
@require_POST
def ledger_verify(request):
    """Start a full verification on a worker (it does not change the ledger)."""
    if _health()["running"]:
        messages.info(request, "A full verification is already running.")
    else:
        verify_ledger.send(request.user.username)
        messages.success(request, "Full verification started; this page shows the verdict when it ends.")
    return redirect("web:ledger")


@audit_page
def job_monitor(request):
    return render(request, "web/audit/jobs.html", {"overview": job_overview(), "queues": queue_depths()})
