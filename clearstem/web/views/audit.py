"""Audit pages (platform organisations, read-only): find a stem by id or by the file itself,
its chain checked live, ledger health, and the job monitor.

Finding by file (`clearstem.jobs.stem_prints.find_stems`) looks the dropped file up three ways:
its bytes (a stem master or a delivered rendition, unchanged, or an upload), the C2PA content
credentials it carries, and its sound (a re-encode or an excerpt); the page lists every stem
found, strongest evidence first, with how it was found.

A stem's chain is the offline verifier's checks (`provenance.audit.stem_chain`), then the links
only the platform can show: each license version the job relied on (do its stored terms still
hash to the digest the job recorded?) and the ownership attestation's signature."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from clearstem.accounts import scoping as scope
from clearstem.api.errors import http_status
from clearstem.jobs.lookup import AUDIT_PAGES, Candidate, lookup
from clearstem.jobs.models import Job, Stem, StemRendition
from clearstem.jobs.monitor import job_overview, queue_depths
from clearstem.jobs.stem_prints import Findings, find_stems_by_file
from clearstem.uploads.models import Upload
from licensing.models import LicenseGrant, LicenseRequest, Recording
from provenance import ledger
from provenance.actors import verify_ledger
from provenance.audit import Chain, attestation_check, stem_chain
from provenance.consistency import check_consistency, check_inclusion, recent_heads
from provenance.models import LedgerEntry, LedgerVerification
from provenance.verify import Check
from sharedcore.errors import DomainError

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


#: What the page says when a dropped file cannot be looked up, by error code, where the
#: service's own detail is not for people (the scanner's names the decoder's exception).
FIND_ERRORS = {
    "not_audio": "This file is not audio ClearStem can read (WAV, FLAC, MP3, AAC, Ogg…), so there is nothing "
                 "to look up.",
    "corrupt_audio": "This file's audio is damaged and could not be decoded, so it could not be looked up.",
}
FORMAT_LABELS = {"wav": "WAV", "wav16": "16-bit WAV", "wav24": "24-bit WAV", "flac": "FLAC", "mp3": "MP3"}
DECIDED_BY = {"chromaprint": "Chromaprint", "landmarks": "landmark hashes", "both": "Chromaprint and landmark hashes"}
BASIS_LABELS = {"license": "license", "attestation": "the uploader's ownership statement", "none": "none"}


def _grants_shown(jobs) -> tuple[dict, dict]:
    """{grant id: LicenseGrant} and {recording id: title} for the grants these jobs relied on."""
    grants = [g for job in jobs for g in (job.decision or {}).get("grants", [])]
    objs = LicenseGrant.objects.filter(id__in={g["grant"] for g in grants}).select_related(
        "licensor", "licensee_org", "licensee_user")
    titles = dict(Recording.objects.filter(id__in={g.get("recording") for g in grants if g.get("recording")})
                  .values_list("id", "title"))
    return {str(g.id): g for g in objs}, {str(k): v for k, v in titles.items()}


def describe_findings(found: Findings) -> list[dict]:
    """Each stem found, strongest evidence first, with how it was found and the rights it was
    made under, as the find page lists them."""
    stems = found.stems()
    by_sound = {m.stem.pk: m.evidence for m in found.sound}
    exact = {s.pk for s in found.exact}
    formats = dict(StemRendition.objects.filter(stem__in=exact, sha256=found.sha256).values_list("stem_id", "format"))
    named = found.credentials_stem.pk if found.credentials_stem else None
    state = found.credentials.state if found.credentials else None
    grant_objs, titles = _grants_shown([s.job for s in stems])
    rows = []
    for stem in stems:
        how = []
        if stem.pk in exact:
            fmt = formats.get(stem.pk)
            how.append({"kind": "bytes", "label": "same bytes",
                        "detail": f"as its delivered {FORMAT_LABELS.get(fmt, fmt)}" if fmt
                        else "as the stem master" if stem.sha256 == found.sha256 else "as a delivered rendition"})
        if stem.pk == named:
            how.append({"kind": "credentials", "label": "content credentials",
                        "detail": f"the file's C2PA manifest ({state}) names this stem"})
        if (ev := by_sound.get(stem.pk)) is not None:
            q0, r0, span = ev["query_start_s"], ev["ref_start_s"], ev["duration_s"]
            by = DECIDED_BY.get(ev.get("decided_by"), "")
            view = (ev.get("landmarks") or {}).get("view", "mix")
            where = "" if view == "mix" else f", in the file's separated {view} part"
            how.append({"kind": "sound", "label": f"sound, score {ev['score']:.2f}",
                        "detail": f"{q0:.1f}–{q0 + span:.1f} s of this file is {r0:.1f}–{r0 + span:.1f} s of the stem"
                                  + (f" (found by {by}{where})" if by else where),
                        "evidence": ev})
        decision = stem.job.decision or {}
        grants = []
        for g in decision.get("grants", []):
            obj = grant_objs.get(str(g["grant"]))
            licensee = ((obj.licensee_org.name if obj.licensee_org else None)
                        or (obj.licensee_user.username if obj.licensee_user else "verified producers")) if obj else ""
            grants.append({**g, "obj": obj, "licensee": licensee, "title": titles.get(str(g.get("recording")), "")})
        rows.append({"stem": stem, "job": stem.job, "how": how, "grants": grants,
                     "basis": BASIS_LABELS.get(decision.get("basis"), decision.get("basis") or "none")})
    return rows


def _find_by_file(request, ctx):
    """The find page's answer to a dropped file: a redirect, or the status to render ctx with."""
    f = request.FILES.get("file")
    if f is None:
        ctx["error"] = "Choose a file to look up."
        return 400
    try:
        found = find_stems_by_file(scope.findable_stems(request.user), f)
    except DomainError as exc:
        detail = FIND_ERRORS.get(exc.code) or str(exc.detail)
        ctx["error"] = f"“{f.name}” could not be looked up: {detail[:1].lower()}{detail[1:]}".rstrip(".") + "."
        return http_status(exc)
    uploads = list(Upload.objects.filter(sha256=found.sha256).prefetch_related("jobs__stem_files"))
    creds = found.credentials
    if len(found.exact) == 1 and not uploads and not (creds and creds.found):
        return redirect("web:audit-stem", found.exact[0].id)  # the stem's own bytes: nothing more to show
    named = ((creds.clearstem or {}).get("stem") or {}) if creds and creds.found else {}
    ctx["results"] = {"sha256": found.sha256, "name": f.name, "seconds": found.seconds, "credentials": creds,
                      "credentials_stem": found.credentials_stem, "named_stem_id": named.get("id"),
                      "master_copy": any(s.sha256 == found.sha256 for s in found.exact),
                      "by_sound": bool(found.sound), "stems": describe_findings(found), "uploads": uploads}
    if not ctx["results"]["stems"] and not uploads:
        ctx["error"] = ("Nothing found: no stem or upload has these bytes, no content credentials name a stem, "
                        "and the sound matches no stem. This file did not come out of ClearStem, or not from a "
                        "stem you may trace.")
        return 404
    return 200


@audit_page
def find(request):
    """Find anything by an id or hash prefix of 8+ hex characters (one match opens it, several
    are listed), or a stem by uploading the file (looked up by its bytes, its content credentials
    and its sound; the file is not kept)."""
    ctx = {"health": _health(), "query": "", "results": None, "error": "", "file_error": False, "candidates": None}
    status = 200
    if request.method == "POST":
        answer = _find_by_file(request, ctx)
        if not isinstance(answer, int):
            return answer
        status, ctx["file_error"] = answer, bool(ctx["error"])
    elif (q := request.GET.get("q", "").strip()):
        ctx["query"] = q
        try:
            found = lookup(q)
        except DomainError as exc:
            ctx["error"], status = exc.detail, http_status(exc)
        else:
            if len(found.candidates) == 1:
                return redirect(candidate_url(found.candidates[0]))
            ctx["candidates"] = [{"c": c, "url": candidate_url(c), "kind": KIND_LABELS[c.kind]}
                                 for c in found.candidates]
            ctx["truncated"] = found.truncated
            if not found.candidates:
                ctx["error"] = (f"Nothing has an id or hash starting with “{found.prefix}”: no stem, job, upload, "
                                "license grant or ledger entry.")
                status = 404
    ctx["recent_stems"] = Stem.objects.select_related("job__upload", "job__organisation").order_by("-created_at")[:10]
    ctx["recent_jobs"] = Job.objects.select_related("upload", "organisation").order_by("-created_at")[:10]
    return render(request, "web/audit/find.html", ctx, status=status)


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


def _ledger_state() -> dict:
    health = _health()
    runs = list(LedgerVerification.objects.all()[:10])
    # what the page shows changes only with these: the poll answers 204 (no swap, focus kept) otherwise
    version = "-".join(str(x) for x in (health["size"], health["head"].size, *[f"{r.pk}.{r.ok}" for r in runs[:1]]))
    return {"health": health, "runs": runs, "version": version,
            "entries": [{"e": e, "subject_url": subject_url(e.subject)}
                        for e in LedgerEntry.objects.order_by("-index")[:25]]}


@audit_page
def ledger_health(request):
    return render(request, "web/audit/ledger.html", _ledger_state())


@audit_page
def ledger_live(request):
    """The ledger page's changing parts, polled by the page itself (htmx) every few seconds;
    204 when nothing changed since the state the page holds (`since`)."""
    state = _ledger_state()
    if request.GET.get("since") == state["version"]:
        return HttpResponse(status=204)
    return render(request, "web/audit/_ledger_live.html", state)


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


KIND_LABELS = {"stem": "Stem", "job": "Job", "upload": "Upload", "recording": "Recording", "grant": "License grant",
               "license_request": "License request", "ledger_entry": "Ledger entry"}


def candidate_url(c: Candidate) -> str:
    return reverse(AUDIT_PAGES[c.kind], args=[int(c.key) if c.kind == "ledger_entry" else c.key])


def subject_url(subject: str) -> str | None:
    """The audit page of a ledger entry's subject ("stem:<id>", "grant:<id>", "job:<id>")."""
    kind, _, key = subject.partition(":")
    page = {"stem": "web:audit-stem", "grant": "web:audit-grant", "job": "web:audit-job",
            "recording": "web:audit-recording"}.get(kind)
    try:
        return reverse(page, args=[uuid.UUID(key)]) if page else None
    except ValueError:
        return None


@audit_page
def job_detail(request, job_id):
    """One job as an auditor sees it: the request, the decision and its reasons, the stems."""
    job = get_object_or_404(Job.objects.select_related("upload", "organisation", "requested_by"), pk=job_id)
    _, grants = license_checks(job.decision)
    return render(request, "web/audit/job.html", {
        "job": job, "upload": job.upload, "explained": present.explain_decision(job), "grants": grants,
        "stems": job.stem_files.all(),
        "entries": LedgerEntry.objects.filter(subject__in=[f"job:{job.pk}"] + [f"stem:{s.pk}" for s in
                                                                               job.stem_files.all()]).order_by("index"),
    })


@audit_page
def upload_detail(request, upload_id):
    upload = get_object_or_404(Upload.objects.select_related("owner", "organisation"), pk=upload_id)
    return render(request, "web/audit/upload.html", {
        "upload": upload, "jobs": upload.jobs.select_related("requested_by").prefetch_related("stem_files"),
    })


@audit_page
def grant_detail(request, grant_id):
    grant = get_object_or_404(LicenseGrant.objects.select_related("licensor", "licensee_org", "licensee_user"),
                              pk=grant_id)
    return render(request, "web/audit/grant.html", {
        "grant": grant, "recordings": grant.recordings.all(),
        "versions": LicenseGrant.objects.filter(family=grant.family).order_by("version"),
        "entries": LedgerEntry.objects.filter(subject=f"grant:{grant.pk}").order_by("index"),
    })


@audit_page
def recording_detail(request, recording_id):
    """A catalog recording as an auditor sees it: who holds it, its earlier titles/ISRCs, the
    licenses that name it, the requests for it and its ledger entries."""
    rec = get_object_or_404(Recording.objects.select_related("rights_holder"), pk=recording_id)
    return render(request, "web/audit/recording.html", {
        "rec": rec, "revisions": rec.revisions.select_related("replaced_by"),
        "grants": rec.grants.select_related("licensor", "licensee_org").order_by("-created_at")[:50],
        "requests": rec.license_requests.select_related("requester_org").order_by("-created_at")[:50],
        "entries": LedgerEntry.objects.filter(subject=f"recording:{rec.pk}").order_by("index"),
    })


@audit_page
def license_request_detail(request, request_id):
    req = get_object_or_404(LicenseRequest.objects.select_related(
        "requester", "requester_org", "rights_holder", "grant", "job"), pk=request_id)
    return render(request, "web/audit/license_request.html", {"req": req, "recordings": req.recordings.all()})


@audit_page
def ledger_entry(request, index):
    """One ledger entry, its body, and its inclusion in the current signed tree head, checked now."""
    try:
        inclusion = check_inclusion(index)
    except DomainError as exc:
        raise Http404(exc.detail) from exc
    entry = inclusion.entry
    return render(request, "web/audit/entry.html", {
        "entry": entry, "inclusion": inclusion, "leaf_hex": bytes(entry.leaf_hash).hex(),
        "root_hex": bytes(inclusion.head.root_hash).hex(),
        "body": json.dumps(json.loads(bytes(entry.body)), indent=2, ensure_ascii=False),
        "proof": [p.hex() for p in inclusion.proof], "subject_url": subject_url(entry.subject),
    })


def _size(raw: str | None, name: str) -> int:
    try:
        return int((raw or "").strip())
    except ValueError:
        raise DomainError("invalid_range", f"The {name} size must be a whole number of entries.") from None


@audit_page
def consistency_proof(request):
    """The consistency proof between two tree sizes, verified: does the later log extend the
    earlier one? Defaults to the two latest signed tree heads."""
    heads = recent_heads()
    sizes = [h.size for h in heads] + [0]
    ctx = {"pairs": list(zip(sizes[1:], sizes[:-1], strict=True)), "size": ledger.ledger_size(), "check": None,
           "error": ""}
    status = 200
    first_raw, second_raw = request.GET.get("first"), request.GET.get("second")
    if first_raw is None and second_raw is None:
        first_raw = str(heads[1].size if len(heads) > 1 else 0)
        second_raw = str(heads[0].size if heads else 0)
    ctx["first"], ctx["second"] = first_raw or "", second_raw or ""
    try:
        ctx["check"] = check_consistency(_size(first_raw, "first"), _size(second_raw, "second"))
        check = ctx["check"]
        ctx["proof"] = [p.hex() for p in check.proof]
        ctx["heads_shown"] = [{"size": h.size, "root_hex": h.root.hex(), "signed": h.signed,
                               "signature_problem": h.signature_problem} for h in (check.first, check.second)]
    except DomainError as exc:
        ctx["error"], status = exc.detail, http_status(exc)
    return render(request, "web/audit/consistency.html", ctx, status=status)
