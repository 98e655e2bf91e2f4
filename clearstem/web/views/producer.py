"""Producer pages: upload, see what the audio is and whether it may be separated, run a job,
listen to and download the stems, follow licenses and requests."""
from __future__ import annotations

import json
import uuid

from django.conf import settings
from django.contrib import messages
from django.core.files.storage import default_storage
from django.db.models import Prefetch
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from clearstem.accounts import scoping as scope
from clearstem.api.catalog import CatalogRequestSerializer
from clearstem.api.errors import http_status
from clearstem.api.serializers import JobCreateSerializer
from clearstem.excerpts import excerpt_name
from clearstem.jobs.delivery import check_stem_preview, do_deliver_stem, do_export_job, download_refusal
from clearstem.jobs.listening import job_listening, stem_preview
from clearstem.jobs.models import Job, JobReview
from clearstem.jobs.renditions import delivery_name
from clearstem.jobs.services import ATTESTATION_TEXT, do_cancel_job, do_create_job, do_request_licenses
from clearstem.uploads.services import do_create_upload
from licensing.catalog import covered_stems, job_terms_under
from licensing.engine import PURPOSES, STEM_CHOICES
from licensing.metering import grants_for, remaining_caps
from licensing.models import LicenseGrant
from licensing.requests import do_withdraw_license_request
from provenance.services import stem_bundle
from separation.registry import default_model, list_models
from sharedcore.errors import DomainError
from sharedcore.media import DELIVERY_FORMATS

from .. import present
from ..forms import bind, error_dict, form_data
from .common import persona, refuse, wants_json, writer

producer_page = persona("producer")


def _licenses(user):
    """Current licenses the user holds, with what is left of each cap."""
    out = []
    for grant in scope.visible_grants(user, current_only=True).order_by("-created_at"):
        out.append({"grant": grant, "recordings": list(grant.recordings.all()),
                    "remaining": remaining_caps(grant, user) if grant.status == "active" else None})
    return out


@producer_page
def studio(request):
    user = request.user
    uploads = scope.visible_uploads(user).prefetch_related("jobs")[:20]
    grant, note = None, ""
    if (license_id := _license_param(request.GET)):
        grant, note = _license_in_force(user, license_id)
    return render(request, "web/producer/studio.html", {
        "uploads": uploads, "licenses": _licenses(user)[:6], "license": grant, "license_note": note,
        "max_mb": settings.CLEARSTEM_MAX_UPLOAD_BYTES // (1024 * 1024),
    })


@producer_page
@require_POST
@writer
def upload(request):
    """The drop zone posts here (XHR, JSON answer) and so does the plain form without JS."""
    try:
        up = do_create_upload(request.user, request.FILES.get("file"))
    except DomainError as exc:
        if wants_json(request):
            return JsonResponse({"code": exc.code, "detail": str(exc.detail)}, status=http_status(exc))
        return refuse(request, exc, "web:studio")
    url = reverse("web:upload", args=[up.id])
    if (license_id := _license_param(request.POST)):
        url += f"?license={license_id}"
    return JsonResponse({"id": str(up.id), "redirect": url}, status=201) if wants_json(request) else redirect(url)


def _license_param(data):
    """A `license` (grant id) from a query string or form, when it is a well-formed id."""
    raw = (data.get("license") or "").strip()
    try:
        return str(uuid.UUID(raw)) if raw else None
    except ValueError:
        return None


#: Why a license named on a page does not shape the job form, after "Your license from X (version N)".
NOT_IN_FORCE = {
    "revoked": "is revoked", "suspended": "is suspended", "expired": "has expired",
    "scheduled": "is not in force yet", "superseded": "has been replaced by a newer version",
}


def _license_in_force(user, license_id):
    """(grant, note) for a license named by id (`?license=`, the form's hidden field): its family's
    current version when it was amended since the id was taken, and only while that version is in
    force; else (None, a sentence saying why). (None, "") when the user holds no such license."""
    grant = scope.visible_grants(user).filter(pk=license_id).first()
    if grant is None:
        return None, ""
    note = ""
    if grant.status == LicenseGrant.Status.SUPERSEDED:
        current = (scope.visible_grants(user, current_only=True).filter(family=grant.family)
                   .order_by("-version").first())
        if current is not None:
            note = (f"Your license from {grant.licensor.name} was amended since (version {grant.version} → "
                    f"{current.version}): the form follows version {current.version}.")
            grant = current
    status = grant.current_status
    if status == LicenseGrant.Status.ACTIVE:
        return grant, note
    why = NOT_IN_FORCE.get(status, f"is {status}")
    if status == "scheduled" and grant.valid_from:
        why += f" (it starts on {timezone.localtime(grant.valid_from):%d %B %Y})"
    return None, (f"Your license from {grant.licensor.name} (version {grant.version}) {why}: "
                  "the form below is not limited to it, and a separation needs a license in force.")


def _form_license(request, source, covering):
    """(license, note): the license the job form starts from: the one named (`?license=`, or the
    form's hidden field) while it is in force, else the active license that covers every
    recording identified in the upload; `license=none` asks for the form without one. The note
    says why a named license does not apply (revoked, expired, …) or that it was amended."""
    if (source.get("license") or "") == "none":
        return None, ""
    if (license_id := _license_param(source)):
        grant, note = _license_in_force(request.user, license_id)
        if grant is None and not note:
            raise Http404("no such license")
        return grant, note
    common = None
    for c in covering:
        ids = {g["grant"].id for g in c["grants"]}
        common = ids if common is None else common & ids
    if not common:
        return None, ""
    return next(g["grant"] for g in covering[0]["grants"] if g["grant"].id in common), ""


def _upload_context(request, up, form=None, errors=None, source=None):
    user = request.user
    matches = present.describe_matches(up.identification.get("matches", []))
    covering = []
    if matches:
        by_rec = grants_for(user, [m["recording"] for m in matches])
        for m in matches:
            grants = [g for g in by_rec.get(m["recording"], []) if g.current_status == "active"]
            covering.append({"match": m, "grants": [{"grant": g, "remaining": remaining_caps(g, user)} for g in grants]})
    grant, license_note = _form_license(request, request.GET if source is None else source, covering)
    stems, purposes = list(STEM_CHOICES), list(PURPOSES)
    initial = {"stems": ["vocals", "drums", "bass", "other"], "purpose": "remix", "territory": ""}
    if grant is not None:  # offer only what the license covers, pre-filled from it
        stems, purposes = covered_stems(grant.stems), list(grant.purposes)
        initial = job_terms_under(grant)
    return {
        "upload": up, "matches": matches, "covering": covering, "license": grant, "license_note": license_note,
        "suspects": present.describe_matches(up.identification.get("suspects", [])),
        "identified": up.identification_status != "pending",
        "jobs": up.jobs.order_by("-created_at"),
        "stem_choices": [(s, present.STEM_LABELS[s]) for s in stems],
        "purposes": [(p, present.PURPOSE_LABELS[p]) for p in purposes],
        "models": [m for m in list_models(settings.CLEARSTEM_MODEL_DIR) if m.available],
        "attestation_text": ATTESTATION_TEXT,
        "form": form or {**initial, "model": default_model(settings.CLEARSTEM_MODEL_DIR, settings.CLEARSTEM_DEFAULT_MODEL)},
        "errors": errors or {},
    }


@producer_page
def upload_detail(request, upload_id):
    up = get_object_or_404(scope.visible_uploads(request.user), pk=upload_id)
    return render(request, "web/producer/upload.html", _upload_context(request, up))


@producer_page
def upload_identification(request, upload_id):
    """The identification panel alone (polled while identification runs)."""
    up = get_object_or_404(scope.visible_uploads(request.user), pk=upload_id)
    # once identified, the form's ownership-statement slot is updated too (htmx out-of-band)
    return render(request, "web/partials/identification.html", {**_upload_context(request, up), "oob": True})


@producer_page
@require_POST
@writer
def separate(request, upload_id):
    up = get_object_or_404(scope.visible_uploads(request.user), pk=upload_id)
    data = form_data(request.POST, lists=("stems",), booleans=("commercial", "attest"), optional=("model",))
    attest = data.pop("attest")
    data.pop("license", None)
    stems = data.pop("stems")
    body = {**data, "upload": str(up.id), "requested_stems": stems}  # the API's name for the field
    if attest:
        body["attestation"] = {"accepted": True}
    valid, errors = bind(JobCreateSerializer, body)
    errors = {("stems" if k == "requested_stems" else k): v for k, v in errors.items()}
    if valid:
        try:
            job = do_create_job(
                request.user, up, stems=valid["requested_stems"], purpose=valid["purpose"],
                commercial=valid["commercial"], territory=valid["territory"], attestation=valid.get("attestation"),
                model=valid.get("model"))
            return redirect("web:job", job.id)
        except DomainError as exc:
            errors = error_dict(exc)
    form = {**data, "stems": stems, "attest": attest}
    return render(request, "web/producer/upload.html", _upload_context(request, up, form, errors, request.POST),
                  status=400)


def _job_context(request, job):
    user = request.user
    stems = list(job.stem_files.all())
    grants = []
    for g in (job.decision or {}).get("grants", []):
        grant = scope.visible_grants(user).filter(id=g["grant"]).first()
        if grant is not None:
            current = scope.visible_grants(user, current_only=True).filter(family=grant.family).first() or grant
            grants.append({"grant": current, "remaining": remaining_caps(current, user)})
    refusal = download_refusal(user, stems[0]) if stems else None  # the stems of a job share its terms
    return {"job": job, "explained": present.explain_decision(job), "stems": stems, "grants": grants,
            "download_refusal": refusal.detail if refusal else "",
            "terminal": job.state in Job.TERMINAL, "requests": job.license_requests.all(),
            "steps": _steps(job), "separate_under": _licenses_for_retry(user, job),
            **(job_listening(job, stems) if stems else {})}  # waveforms for the player


def _licenses_for_retry(user, job) -> list[dict]:
    """For a denied job: the active licenses that cover every recording that blocked it, each
    with the job it would run (the asked terms, narrowed to what the license covers)."""
    if job.state != Job.State.DENIED:
        return []
    blocked = {r["recording"] for r in (job.decision or {}).get("reasons", []) if r.get("recording")}
    if not blocked:
        return []
    out = []
    for grant in scope.visible_grants(user, current_only=True).filter(status="active", recordings__in=blocked).distinct():
        if grant.current_status == "active" and blocked <= {str(r.id) for r in grant.recordings.all()}:
            terms = job_terms_under(grant, stems=job.stems, purpose=job.purpose, commercial=job.commercial,
                                    territory=job.territory)
            if terms["territory"]:
                out.append({"grant": grant, "terms": terms})
    return out


def _steps(job):
    order = ["received", "identifying", "queued", "separating", "done"]
    labels = {"received": "Received", "identifying": "Identifying & clearing", "queued": "Queued",
              "separating": "Separating", "done": "Stems ready"}
    if job.state == Job.State.REVIEW:
        labels["identifying"] = "Waiting for review"
    state = {"cleared": "queued", "review": "identifying"}.get(job.state, job.state)
    reached = order.index(state) if state in order else None
    out = []
    for i, key in enumerate(order):
        if reached is None:  # denied / failed / cancelled: show where it stopped
            status = "done" if i == 0 else ("stopped" if i == 1 and job.state == "denied" else "skipped")
        else:
            status = "done" if i < reached or state == "done" else ("current" if i == reached else "todo")
        out.append({"key": key, "label": labels[key], "status": status})
    return out


def _job(request, job_id):
    jobs = scope.visible_jobs(request.user).prefetch_related(
        Prefetch("reviews", JobReview.objects.select_related("recording", "rights_holder")))
    return get_object_or_404(jobs, pk=job_id)


@producer_page
def job_detail(request, job_id):
    job = _job(request, job_id)
    return render(request, "web/producer/job.html", _job_context(request, job))


@producer_page
def job_status(request, job_id):
    """The live part of the job page (polled until the job ends)."""
    job = _job(request, job_id)
    if job.state in Job.TERMINAL and request.headers.get("HX-Request"):
        # finished: reload the whole page once (stems, request form), instead of swapping
        # controls under a keyboard user's focus every second
        return HttpResponse(status=204, headers={"HX-Refresh": "true"})
    return render(request, "web/partials/job_live.html", _job_context(request, job))


@producer_page
@require_POST
@writer
def job_cancel(request, job_id):
    job = get_object_or_404(scope.visible_jobs(request.user), pk=job_id)
    try:
        do_cancel_job(job.pk, request.user)
        messages.success(request, "Cancellation requested.")
    except DomainError as exc:
        return refuse(request, exc, "web:job", job.pk)
    return redirect("web:job", job.pk)


@producer_page
@require_POST
@writer
def request_license(request, job_id):
    """One click from a refused job: ask each rights holder for what the job needed."""
    job = get_object_or_404(scope.visible_jobs(request.user), pk=job_id)
    try:
        reqs = do_request_licenses(request.user, job=job, message=request.POST.get("message", "")[:4000])
    except DomainError as exc:
        return refuse(request, exc, "web:job", job.pk)
    holders = ", ".join(sorted({r.rights_holder.name for r in reqs}))
    messages.success(request, f"License request sent to {holders}. You will see the answer here and under Licenses.")
    return redirect("web:job", job.pk)


@producer_page
@require_POST
@writer
def separate_under(request, job_id, grant_id):
    """"Separate now under license …": one click from a denied job, with the license's terms."""
    job = get_object_or_404(scope.visible_jobs(request.user), pk=job_id)
    choice = next((c for c in _licenses_for_retry(request.user, job) if str(c["grant"].id) == str(grant_id)), None)
    if choice is None:
        raise Http404("no license covers this job")
    try:
        new = do_create_job(request.user, job.upload, model=job.model, **choice["terms"])
    except DomainError as exc:
        return refuse(request, exc, "web:job", job.pk)
    return redirect("web:job", new.id)


# --- the open catalog -------------------------------------------------------------------------

@producer_page
def catalog(request):
    """Recordings labels opened for remix requests: search, listen, ask before uploading."""
    q = request.GET.get("q", "").strip()
    recs = scope.visible_catalog(request.user, q)
    ctx = {"recordings": recs[:200], "q": q, "total": recs.count()}
    if request.headers.get("HX-Request"):  # live search: only the results
        return render(request, "web/producer/_catalog_rows.html", ctx)
    return render(request, "web/producer/catalog.html", ctx)


def _request_initial(rec) -> dict:
    territories = [t for t in rec.offer_territories if t != "WW"]
    return {"stems": [s for s in rec.offer_stems if s != "instrumental"] or rec.offer_stems,
            "purpose": (rec.offer_purposes or ["remix"])[0], "commercial": rec.offer_commercial,
            "territory": territories[0] if len(territories) == 1 else ""}


def _catalog_context(request, rec, form, errors=None) -> dict:
    return {"rec": rec, "form": form, "errors": errors or {},
            "stem_choices": [(s, present.STEM_LABELS[s]) for s in STEM_CHOICES],
            "purposes": [(p, present.PURPOSE_LABELS[p]) for p in PURPOSES],
            "requests": scope.visible_license_requests(request.user).filter(recordings=rec)[:10]}


@producer_page
def catalog_recording(request, recording_id):
    """One open recording: its usual terms, an excerpt, and the license request form."""
    rec = get_object_or_404(scope.visible_catalog(request.user), pk=recording_id)
    return render(request, "web/producer/catalog_recording.html", _catalog_context(request, rec, _request_initial(rec)))


@producer_page
@require_POST
@writer
def catalog_request(request, recording_id):
    """Ask the label for a license on an open recording, before uploading anything."""
    rec = get_object_or_404(scope.visible_catalog(request.user), pk=recording_id)
    data = form_data(request.POST, lists=("stems",), booleans=("commercial",))
    valid, errors = bind(CatalogRequestSerializer, data)
    if valid:
        try:
            do_request_licenses(request.user, recordings=[rec], **valid)
            messages.success(request, f"License request for “{rec.title}” sent to {rec.rights_holder.name}. "
                                      "You will see the answer under Licenses.")
            return redirect("web:studio-licenses")
        except DomainError as exc:
            errors = error_dict(exc)
    return render(request, "web/producer/catalog_recording.html", _catalog_context(request, rec, data, errors),
                  status=400)


@producer_page
def catalog_excerpt(request, recording_id):
    """A few seconds of an open recording (stereo MP3), nothing more."""
    rec = get_object_or_404(scope.visible_catalog(request.user), pk=recording_id)
    try:
        name = excerpt_name(rec)
    except DomainError as exc:  # the reference audio is gone or unreadable: the player says so
        return HttpResponse(str(exc.detail), status=http_status(exc), content_type="text/plain")
    return FileResponse(default_storage.open(name, "rb"), content_type="audio/mpeg")


def _stem(request, stem_id):
    return get_object_or_404(scope.visible_stems(request.user), pk=stem_id)


@producer_page
def stem_download(request, stem_id):
    stem = _stem(request, stem_id)
    try:
        rendition = do_deliver_stem(request.user, stem, request.GET.get("format"))
    except DomainError as exc:
        return refuse(request, exc, "web:job", stem.job_id)
    return FileResponse(default_storage.open(rendition.file.name, "rb"), as_attachment=True,
                        filename=delivery_name(stem, rendition.format),
                        content_type=DELIVERY_FORMATS[rendition.format][2])


@producer_page
def stem_listen(request, stem_id):
    """A lossy preview for the page's player; judged like a download, no cap spent."""
    stem = _stem(request, stem_id)
    try:
        check_stem_preview(request.user, stem)
    except DomainError as exc:
        return HttpResponse(str(exc.detail), status=http_status(exc), content_type="text/plain")
    return FileResponse(default_storage.open(stem_preview(stem), "rb"), content_type="audio/mpeg")


@producer_page
def stem_provenance(request, stem_id):
    stem = _stem(request, stem_id)
    resp = HttpResponse(json.dumps(stem_bundle(stem), indent=2), content_type="application/json")
    resp["Content-Disposition"] = f'attachment; filename="{stem.name}-{str(stem.job_id)[:8]}.provenance.json"'
    return resp


@producer_page
def job_export(request, job_id):
    job = get_object_or_404(scope.visible_jobs(request.user), pk=job_id)
    try:
        archive = do_export_job(request.user, job.pk, request.GET.get("format"))
    except DomainError as exc:
        return refuse(request, exc, "web:job", job.pk)
    return FileResponse(archive, as_attachment=True, filename=f"clearstem-{str(job.pk)[:8]}.zip",
                        content_type="application/zip")


@producer_page
@require_POST
@writer
def withdraw_request(request, request_id):
    req = get_object_or_404(scope.visible_license_requests(request.user), pk=request_id)
    try:
        do_withdraw_license_request(req.pk, request.user.organisation)
    except DomainError as exc:
        return refuse(request, exc, "web:studio-licenses")
    messages.success(request, f"Request to {req.rights_holder.name} withdrawn.")
    return redirect("web:studio-licenses")


@producer_page
def licenses(request):
    user = request.user
    return render(request, "web/producer/licenses.html", {
        "licenses": _licenses(user),
        "requests": scope.visible_license_requests(user).select_related("grant", "job")[:50],
    })
