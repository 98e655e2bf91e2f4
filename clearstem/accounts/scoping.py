"""What each user may see: one function per kind of object, shared by the API and the web UI.

Producers see their organisation's uploads, jobs and stems; labels their catalog, grants,
incoming requests and the reviews of their recordings; platform auditors everything; anyone else nothing. Objects outside the scope
are invisible (404), never merely forbidden.
"""
from __future__ import annotations

from django.db.models import Q, QuerySet

from clearstem.jobs.models import Job, JobReview, Stem
from clearstem.uploads.models import Upload
from licensing.catalog import open_catalog
from licensing.models import LicenseGrant, LicenseRequest, Recording


def visible_uploads(user) -> QuerySet:
    return _producer_scoped(user, Upload.objects.all(), "organisation")


def visible_jobs(user) -> QuerySet:
    return _producer_scoped(user, Job.objects.select_related("upload"), "organisation")


def visible_stems(user) -> QuerySet:
    return _producer_scoped(user, Stem.objects.select_related("job", "job__upload"), "job__organisation")


def findable_stems(user) -> QuerySet:
    """Stems a copy found in the wild may be traced to: the platform all; a label the stems made
    under its licenses (separations metered against its recordings); a producer its own."""
    qs = Stem.objects.select_related("job", "job__upload", "job__organisation")
    if user.is_label:
        made = Job.objects.filter(usage__kind="separation", usage__recording__rights_holder=user.organisation)
        return qs.filter(job__in=made.values("pk"))
    return _producer_scoped(user, qs, "job__organisation")


def visible_recordings(user) -> QuerySet:
    qs = Recording.objects.select_related("rights_holder")
    if user.is_platform:
        return qs
    if user.is_label:
        return qs.filter(rights_holder=user.organisation)
    return qs.none()


def visible_catalog(user, q: str = "") -> QuerySet:
    """The open catalog: recordings their labels opened for remix requests (any member of an
    organisation may browse it; closed recordings stay invisible, 404)."""
    if user.organisation_id is None:
        return Recording.objects.none()
    return open_catalog(q)


def visible_grants(user, current_only: bool = False) -> QuerySet:
    """Labels see what they granted; producers what they hold (never drafts), including open
    campaigns when verified."""
    qs = LicenseGrant.objects.select_related("licensor", "licensee_org", "licensee_user").prefetch_related("recordings")
    if current_only:
        qs = qs.exclude(status=LicenseGrant.Status.SUPERSEDED)
    if user.is_platform:
        return qs
    if user.is_label:
        return qs.filter(licensor=user.organisation)
    if user.is_producer:
        mine = Q(licensee_org=user.organisation) | Q(licensee_user=user)
        if user.organisation.verified:
            mine |= Q(open_to_verified=True)
        return qs.filter(mine).exclude(status=LicenseGrant.Status.DRAFT)
    return qs.none()


def visible_license_requests(user) -> QuerySet:
    qs = LicenseRequest.objects.select_related("requester", "requester_org", "rights_holder").prefetch_related(
        "recordings")
    if user.is_platform:
        return qs
    if user.is_label:
        return qs.filter(rights_holder=user.organisation)
    if user.is_producer:
        return qs.filter(requester_org=user.organisation)
    return qs.none()


def visible_reviews(user) -> QuerySet:
    """Reviews of suspected recordings: the rights holder sees those of its recordings, the
    producer those of its own jobs (read-only), the platform all."""
    qs = JobReview.objects.select_related("job", "job__upload", "job__organisation", "recording", "rights_holder",
                                          "decided_by")
    if user.is_platform:
        return qs
    if user.is_label:
        return qs.filter(rights_holder=user.organisation)
    if user.is_producer:
        return qs.filter(job__organisation=user.organisation)
    return qs.none()


def _producer_scoped(user, qs: QuerySet, org_path: str) -> QuerySet:
    if user.is_platform:
        return qs
    if user.is_producer:
        return qs.filter(**{org_path: user.organisation})
    return qs.none()
