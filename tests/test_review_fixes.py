"""The job form follows only a license in force (a stopped one says why, an amended one moves to
its current version), and a new password ends the old API token."""
from datetime import timedelta

from django.contrib.auth.tokens import default_token_generator
from django.test import Client
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.test import APIClient

from clearstem.jobs.models import Job
from tests.conftest import grant_body, upload_file

BANNER = "Under your license from Label A"
PASSWORD = "a-much-longer-passphrase-2026"


def _web(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_a_stopped_license_never_shapes_the_job_form(clients, users, catalog, audio_dir):
    grant_id = catalog["grant"]["id"]
    up = upload_file(clients["producer"], audio_dir / "excerpt11.flac").json()
    web = _web(users["producer"][0])
    page = web.get(f"/studio/uploads/{up['id']}/?license={grant_id}").content.decode()
    assert BANNER in page and f'name="license" value="{grant_id}"' in page
    assert "separate under your license from Label A" in web.get(f"/studio/?license={grant_id}").content.decode()
    # revoked: the plain form, saying why; the studio's drop zone does not carry it either
    assert clients["label"].post(f"/api/v1/licenses/{grant_id}/revoke/").status_code == 200
    r = web.get(f"/studio/uploads/{up['id']}/?license={grant_id}")
    page = r.content.decode()
    assert r.status_code == 200 and BANNER not in page and 'name="license"' not in page
    assert "Your license from Label A (version 1) is revoked" in page
    assert 'value="sample"' in page  # every purpose offered again, not only the license's
    studio = web.get(f"/studio/?license={grant_id}").content.decode()
    assert "is revoked" in studio and 'name="license"' not in studio and 'class="verdict cleared"' not in studio
    # submitting with it (opened before the revocation) is no 404: the form again, saying why
    r = web.post(f"/studio/uploads/{up['id']}/separate/", {"stems": [], "purpose": "remix", "territory": "GB",
                                                           "model": "dsp", "license": grant_id})
    assert r.status_code == 400 and "is revoked" in r.content.decode()
    # a license whose window has not opened yet is not in force either
    later = clients["label"].post("/api/v1/licenses/", grant_body(
        [catalog["recordings"][11]["id"]], valid_from=(timezone.now() + timedelta(days=3)).isoformat()),
        format="json").json()
    page = web.get(f"/studio/uploads/{up['id']}/?license={later['id']}").content.decode()
    assert BANNER not in page and "is not in force yet (it starts on" in page
    # the automatic choice (no license named) skips both: nothing covers the upload now
    assert BANNER not in web.get(f"/studio/uploads/{up['id']}/").content.decode()
    # someone else's license is still not found
    assert _web(users["producer_b"][0]).get(f"/studio/uploads/{up['id']}/?license={grant_id}").status_code == 404


def test_a_license_amended_while_the_form_is_open_moves_to_its_current_version(clients, users, catalog, audio_dir):
    grant_id = catalog["grant"]["id"]
    up = upload_file(clients["producer"], audio_dir / "excerpt11.flac").json()
    web = _web(users["producer"][0])
    assert 'value="drums"' in web.get(f"/studio/uploads/{up['id']}/?license={grant_id}").content.decode()
    v2 = clients["label"].post(f"/api/v1/licenses/{grant_id}/amend/", {"stems": ["vocals"]}, format="json")
    assert v2.status_code in (200, 201), v2.content
    v2_id = v2.json()["id"]
    # the form, submitted with an error, comes back under version 2 rather than as a 404
    r = web.post(f"/studio/uploads/{up['id']}/separate/", {"stems": [], "purpose": "remix", "territory": "GB",
                                                           "model": "dsp", "license": grant_id})
    page = r.content.decode()
    assert r.status_code == 400 and f"{BANNER} (version 2)" in page and f'name="license" value="{v2_id}"' in page
    assert "was amended since (version 1 → 2)" in page and 'value="drums"' not in page
    # and submitted as it stands, it makes the job
    r = web.post(f"/studio/uploads/{up['id']}/separate/", {"stems": ["vocals"], "purpose": "remix",
                                                           "territory": "GB", "model": "dsp", "license": grant_id})
    assert r.status_code == 302 and Job.objects.filter(upload_id=up["id"]).count() == 1


def _api(token) -> APIClient:
    c = APIClient()
    c.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return c


def test_a_password_reset_ends_the_old_api_token(users):
    user, token = users["producer"]
    assert _api(token).get("/api/v1/jobs/").status_code == 200
    anon = Client()
    link = f"/password-reset/{urlsafe_base64_encode(force_bytes(user.pk))}/{default_token_generator.make_token(user)}/"
    form = anon.get(link, follow=True)
    set_url = form.redirect_chain[-1][0]
    done = anon.post(set_url, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/password-reset/done/"
    r = _api(token).get("/api/v1/jobs/")
    assert r.status_code == 401 and r.json()["code"] == "authentication_failed"
    # someone else's token is untouched
    assert _api(users["producer_b"][1]).get("/api/v1/jobs/").status_code == 200


def test_a_password_change_ends_the_old_api_token(users):
    user, token = users["label"]
    web = _web(user)
    user.set_password("the-old-passphrase")
    user.save()
    web.force_login(user)
    r = web.post("/account/password/", {"old_password": "the-old-passphrase", "new_password1": PASSWORD,
                                        "new_password2": PASSWORD}, follow=True)
    assert r.redirect_chain[-1][0] == "/account/" and "Your API token was revoked" in r.content.decode()
    assert _api(token).get("/api/v1/licenses/").status_code == 401
    assert web.get("/catalog/").status_code == 200  # the browser session stays signed in
