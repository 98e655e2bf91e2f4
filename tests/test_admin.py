"""The Django admin shows rights and provenance objects and changes none of them, for anyone:
they change only through their services, which check the rules and write the ledger."""
from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.test import Client

from clearstem.jobs.models import Job, Stem
from clearstem.jobs.services import do_process_job
from clearstem.uploads.models import Upload
from fingerprint.models import ReferenceFingerprint
from licensing.models import LicenseGrant, LicenseRequest, Recording, UsageEvent
from provenance.models import LedgerEntry, ProvenanceRecord, TreeHead
from tests.test_jobs import make_job

READ_ONLY = [LicenseGrant, LicenseRequest, Recording, UsageEvent, Upload, Job, Stem, ReferenceFingerprint,
             ProvenanceRecord, LedgerEntry, TreeHead]


@pytest.mark.parametrize("model", READ_ONLY, ids=lambda m: m.__name__)
def test_no_add_change_or_delete_for_anyone(model, admin_user, rf):
    model_admin = site._registry[model]
    request = rf.get("/admin/")
    request.user = admin_user  # a superuser: even they get no write path around the services
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)
    assert not model_admin.get_actions(request)


def test_posting_a_change_to_a_grant_is_refused_and_the_terms_stay(admin_client, catalog):
    grant = LicenseGrant.objects.get(pk=catalog["grant"]["id"])
    digest = grant.terms().digest()
    url = f"/admin/licensing/licensegrant/{grant.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    r = admin_client.post(url, {"max_downloads": 1000, "status": "draft", "_save": "Save"})
    assert r.status_code == 403
    assert admin_client.get("/admin/licensing/licensegrant/add/").status_code == 403
    assert admin_client.post(f"/admin/licensing/licensegrant/{grant.pk}/delete/", {"post": "yes"}).status_code == 403
    r = admin_client.post("/admin/licensing/licensegrant/", {"action": "delete_selected", "_selected_action": [grant.pk]})
    grant.refresh_from_db()
    assert (grant.max_downloads, grant.status, grant.terms().digest()) == (20, "active", digest)


def test_platform_auditors_read_rights_objects_in_the_admin(clients, users, catalog, audio_dir):
    job = do_process_job(make_job(clients, audio_dir).pk)
    auditor = users["platform"][0]
    assert auditor.is_staff and not auditor.is_superuser
    web = Client()
    web.force_login(auditor)
    for path in ("licensing/licensegrant", "licensing/recording", "licensing/usageevent", "jobs/job",
                 "uploads/upload", "provenance/ledgerentry"):
        assert web.get(f"/admin/{path}/").status_code == 200, path
    assert web.get(f"/admin/jobs/job/{job.pk}/change/").status_code == 200
    assert web.get("/admin/accounts/user/").status_code == 403  # accounts are not theirs to browse
    assert web.post(f"/admin/jobs/job/{job.pk}/change/", {"state": "done"}).status_code == 403
    assert Job.objects.get(pk=job.pk).state == "queued"
