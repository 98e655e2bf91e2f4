"""What each event says: ids, titles and absolute links (CLEARSTEM_PUBLIC_URL, since workers
do not know the site's public name), read from the database inside the transaction that made the change."""
from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from clearstem.jobs.models import Job
from licensing.models import LicenseGrant, LicenseRequest


def public(path: str) -> str:
    return settings.CLEARSTEM_PUBLIC_URL + path


def _recordings(qs) -> list[dict]:
    return [{"id": str(r.id), "title": r.title, "artist": r.artist, "isrc": r.isrc} for r in qs.order_by("title")]


def _titles(recordings: list[dict]) -> str:
    return ", ".join(r["title"] for r in recordings) or "no recordings"


JOB_SUMMARIES = {"job.finished": "Stems ready: {name}", "job.failed": "Job failed: {name}",
                 "job.denied": "Job denied: {name}"}


def job_event(event_type: str, job_id) -> tuple[int, str, dict]:
    """(organisation id, summary, data) of a job that finished, failed or was denied."""
    job = Job.objects.select_related("upload").get(pk=job_id)
    reasons = job.reasons()  # the same list, in the same words, as GET /api/v1/jobs/{id}/
    data = {"job": {
        "id": str(job.id), "state": job.state, "url": public(reverse("web:job", args=[job.id])),
        "api_url": public(f"/api/v1/jobs/{job.id}/"),
        "upload": {"id": str(job.upload_id), "name": job.upload.original_name},
        "requested_stems": list(job.stems), "purpose": job.purpose, "territory": job.territory,
        "commercial": job.commercial, "error_code": job.error_code or None, "reasons": reasons,
        "files": [{"id": str(s.id), "name": s.name, "download_url": public(f"/api/v1/stems/{s.id}/download/")}
                  for s in job.stem_files.order_by("name")],
    }}
    message = job.error_message or "; ".join(r["message"] for r in reasons)
    if event_type == "job.finished":
        message = "Stems: " + ", ".join(f["name"] for f in data["job"]["files"])
    data["message"] = message
    return job.organisation_id, JOB_SUMMARIES[event_type].format(name=job.upload.original_name), data


def request_event(event_type: str, request_id) -> tuple[int, str, dict]:
    """A request goes to the rights holder when made, to the requester when answered."""
    req = LicenseRequest.objects.select_related("requester_org", "rights_holder").get(pk=request_id)
    recordings = _recordings(req.recordings.all())
    created = event_type == "license_request.created"
    url = reverse("web:request", args=[req.id]) if created else reverse("web:studio-licenses")
    data = {"license_request": {
        "id": str(req.id), "status": req.status, "url": public(url),
        "api_url": public(f"/api/v1/license-requests/{req.id}/"),
        "requester": req.requester_org.name, "rights_holder": req.rights_holder.name, "recordings": recordings,
        "stems": list(req.stems), "purpose": req.purpose, "territory": req.territory, "commercial": req.commercial,
        "grant": str(req.grant_id) if req.grant_id else None,
    }}
    if created:
        data["message"] = req.message
        return (req.rights_holder_id, f"License request from {req.requester_org.name}: {_titles(recordings)}", data)
    data["message"] = req.response
    return (req.requester_org_id, f"License request {req.status} by {req.rights_holder.name}: {_titles(recordings)}",
            data)


def grant_event(event_type: str, grant_id) -> tuple[int | None, str, dict]:
    """A license event goes to the licensee (an open campaign names no one to tell)."""
    grant = LicenseGrant.objects.select_related("licensor", "licensee_org", "licensee_user").get(pk=grant_id)
    org_id = grant.licensee_org_id or (grant.licensee_user.organisation_id if grant.licensee_user_id else None)
    recordings = _recordings(grant.recordings.all())
    data = {"license": {
        "id": str(grant.id), "family": str(grant.family), "version": grant.version, "status": grant.status,
        "url": public(reverse("web:studio-licenses")), "api_url": public(f"/api/v1/licenses/{grant.id}/"),
        "licensor": grant.licensor.name, "recordings": recordings, "stems": list(grant.stems),
        "purposes": list(grant.purposes), "commercial": grant.commercial, "territories": list(grant.territories),
        "valid_from": grant.valid_from.isoformat() if grant.valid_from else None,
        "valid_until": grant.valid_until.isoformat() if grant.valid_until else None,
    }}
    verb = event_type.split(".", 1)[1]
    data["message"] = {"granted": "You may separate these recordings under the license's terms.",
                       "revoked": "Separations and downloads under this license are refused from now on.",
                       "suspended": "Separations and downloads under this license are paused."}[verb]
    return org_id, f"License {verb} by {grant.licensor.name}: {_titles(recordings)}", data
