"""The web UI in a real browser: Playwright driving Debian's headless Chromium against a live
server with a real Dramatiq worker (Redis) and PostgreSQL. One flow per persona, plus refused
uploads. Every main page is saved as a screenshot under test-artifacts/screenshots/."""
from __future__ import annotations

import base64
import json
import shutil
import time
import zipfile
from pathlib import Path

import pytest

from tests.chromium import SHOTS, chromium_browser
from tests.conftest import grant_body, upload_file

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery-staple"
JOB_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def chromium():
    with chromium_browser() as browser:
        yield browser


@pytest.fixture
def page(chromium, live_server, worker):
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True,
                                   base_url=live_server.url)
    context.set_default_timeout(30_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="session")
def password_hash():
    """PASSWORD hashed once with the configured hasher (PBKDF2: about 0.5 s a hash here)."""
    from django.contrib.auth.hashers import make_password

    return make_password(PASSWORD)


@pytest.fixture
def people(users, password_hash):
    """Every user signs in with PASSWORD: the same real hash, made once (set_password would
    spend a PBKDF2 run per user per test; signing in still checks it in full)."""
    for user, _ in users.values():
        user.password = password_hash
        user.save(update_fields=["password"])
    return {k: u for k, (u, _) in users.items()}


def shot(page, name: str, full_page: bool = True) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page)


def sign_in(page, user) -> None:
    """With the keyboard only: the e-mail field has focus, Tab to the password, Enter.

    Browsers apply `autofocus` at a rendering step that may come after the load event `goto`
    waits for, and keys typed before it land on the page body; so the typing waits for the focus
    (a CI run's sign-in once failed for a real user with the right password)."""
    from playwright.sync_api import expect

    page.goto("/")
    assert "/signin/" in page.url
    expect(page.locator("#id_username")).to_be_focused()
    page.keyboard.type(user.username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    # what the keys entered, so a sign-in that fails says why
    assert page.input_value("#id_username") == user.username and page.input_value("#id_password") == PASSWORD, (
        page.input_value("#id_username"), len(page.input_value("#id_password")))
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/signin/" not in url)


def drop_file(page, selector: str, path: Path, mime: str = "audio/flac") -> None:
    """A real drop event carrying the file, as a drag from the desktop produces."""
    data = base64.b64encode(path.read_bytes()).decode()
    page.evaluate(
        """([sel, name, mime, b64]) => {
            const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const dt = new DataTransfer();
            dt.items.add(new File([bytes], name, {type: mime}));
            const zone = document.querySelector(sel);
            zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: dt, bubbles: true, cancelable: true}));
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dt, bubbles: true, cancelable: true}));
        }""",
        [selector, path.name, mime, data],
    )


def fits_phone(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


def wait_job_state(page, states: tuple[str, ...]) -> str:
    """Until the live job panel shows an end state (the page reloads itself once then)."""
    import re

    from playwright.sync_api import expect

    expect(page.locator("#job-state")).to_have_text(re.compile("^(" + "|".join(states) + ")$"),
                                                    timeout=JOB_TIMEOUT_MS)
    page.wait_for_load_state()
    return page.inner_text("#job-state").strip()


def container(path: Path) -> str:
    """wav, flac or mp3 by the file's first bytes, past an ID3v2 tag (where C2PA puts the
    manifest of a FLAC or MP3 file)."""
    data = path.read_bytes()[:1 << 20]
    if data[:3] == b"ID3":
        size = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(data[6:10])) + (10 if data[5] & 0x10 else 0)
        data = data[size:]
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"fLaC":
        return "flac"
    return "mp3" if data[:1] == b"\xff" and data[1] & 0xE0 == 0xE0 else data[:8].hex()


def assert_trusted(path: Path, trust_anchors_pem: str) -> None:
    """The file's embedded C2PA manifest validates against these anchors and binds its bytes."""
    from provenance.credentials import read

    creds = read(path, trust_anchors_pem)
    assert creds.found and creds.state == "Trusted" and creds.binding_ok, (path.name, creds.state, creds.problem,
                                                                          creds.failures)


def register_catalog(clients, audio_dir, licensed=(11,), **grant_terms):
    recs = {}
    for seed in (11, 12):
        with open(audio_dir / f"song{seed}.wav", "rb") as fh:
            r = clients["label"].post("/api/v1/recordings/", {"file": fh, "title": f"Song {seed}", "artist": "The Synths",
                                                              "isrc": f"QZ-AAA-26-000{seed}"}, format="multipart")
        assert r.status_code == 201, r.content
        recs[seed] = r.json()
    grant = None
    if licensed:
        g = clients["label"].post("/api/v1/licenses/", grant_body([recs[s]["id"] for s in licensed], **grant_terms),
                                  format="json")
        assert g.status_code == 201, g.content
        grant = g.json()
    return recs, grant


def test_producer_uploads_separates_listens_and_downloads(page, people, clients, audio_dir, tmp_path):
    from clearstem.jobs.models import Job, Stem, StemRendition
    from licensing.models import UsageEvent
    from provenance.verify import verify_bundle
    from sharedcore.hashing import file_sha256

    register_catalog(clients, audio_dir, max_downloads=10)
    sign_in(page, people["producer"])
    assert page.url.endswith("/studio/")
    shot(page, "producer-studio")

    drop_file(page, "form[data-upload] .dropzone", audio_dir / "excerpt11.flac")
    page.wait_for_url("**/studio/uploads/*/")
    page.get_by_text("Your upload contains 1 catalog recording").wait_for()
    panel = page.inner_text("#identification")
    assert "“Song 11”" in panel and "Label A" in panel and "of your upload" in panel
    assert "Covered by your license from Label A" in panel
    shot(page, "producer-upload-identified")

    page.get_by_label("Drums", exact=True).uncheck()
    page.get_by_label("Bass", exact=True).uncheck()
    page.get_by_label("Where you will use it").fill("GB")
    page.get_by_role("button", name="Separate").click()
    page.wait_for_url("**/studio/jobs/*/")
    assert wait_job_state(page, ("done", "failed", "denied")) == "done"
    page.locator(".stem").first.wait_for()
    assert "Cleared: every recording in your upload is covered" in page.inner_text("#decision")
    shot(page, "producer-job-done")

    job = Job.objects.get()
    assert sorted(job.stems) == ["other", "vocals"] and job.territory == "GB"
    # the in-page player plays a preview without spending a download
    duration = page.evaluate("""() => new Promise(done => {
        const a = document.querySelector('audio');
        a.addEventListener('loadedmetadata', () => done(a.duration), {once: true});
        a.addEventListener('error', () => done(-1), {once: true});
        a.preload = 'auto'; a.load();
    })""")
    assert duration > 10, duration
    assert not UsageEvent.objects.filter(kind__in=["download", "export"]).exists()

    # one stem in each format, from the links on the job page: every file carries content
    # credentials that the platform's published trust anchors see as Trusted, bound to its bytes
    anchors = page.request.get("/api/v1/ledger/content-credentials/").json()["trust_anchors"]
    vocals = Stem.objects.get(name="vocals")
    row = page.locator(".stem").filter(has_text="Vocals")
    for link, fmt in (("WAV", "wav"), ("FLAC", "flac"), ("MP3 320", "mp3")):
        with page.expect_download() as dl:
            row.get_by_role("link", name=link).click()
        path = tmp_path / dl.value.suggested_filename
        dl.value.save_as(path)
        assert container(path) == fmt, (fmt, path.read_bytes()[:16])
        assert_trusted(path, anchors)
        assert file_sha256(path) == StemRendition.objects.get(stem=vocals, format=fmt).sha256
    assert UsageEvent.objects.filter(kind="download").count() == 3

    # the zip in a format other than the default, chosen in the select
    page.get_by_label("Zip of all stems as").select_option("flac")
    shot(page, "producer-job-zip-format", full_page=False)
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download zip").click()
    zip_path = tmp_path / "stems.zip"
    dl.value.save_as(zip_path)
    with zipfile.ZipFile(zip_path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        assert manifest["format"] == "flac" and {s["name"] for s in manifest["stems"]} == {"vocals", "other"}
        for entry in manifest["stems"]:
            zf.extract(entry["file"], tmp_path / "zip")
            path = tmp_path / "zip" / entry["file"]
            assert container(path) == "flac" and file_sha256(path) == entry["sha256"]
            assert_trusted(path, anchors)
            verdict = verify_bundle(path, json.loads(zf.read(entry["bundle"])), c2pa_trust_pems=[anchors])
            assert verdict.ok, verdict.problems

    # remaining caps: 10 downloads, 3 downloads + 2 exported stems spent
    page.goto("/studio/licenses/")
    row = page.locator("tbody tr").filter(has_text="Song 11")
    assert row.locator("td").nth(5).inner_text().startswith("5")
    shot(page, "producer-licenses")

    # phone width: nothing scrolls sideways
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"/studio/jobs/{job.id}/")
    assert fits_phone(page)
    shot(page, "producer-job-phone")
    page.goto("/studio/")
    assert fits_phone(page)
    shot(page, "producer-studio-phone")


def test_refused_uploads(page, people, clients, audio_dir, tmp_path):
    """A file that is not audio is refused at the drop zone; an unlicensed catalog recording is
    refused before separation, with the reason and a one-click license request."""
    from clearstem.uploads.models import Upload
    from licensing.models import LicenseRequest

    register_catalog(clients, audio_dir, licensed=(11,))
    sign_in(page, people["producer"])

    fake = tmp_path / "notes.wav"
    fake.write_bytes(b"these are my lyrics, not audio\n" * 200)
    page.set_input_files("#upload-file", str(fake))
    status = page.locator("[data-status]")
    status.filter(has_text="was refused").wait_for()
    assert "not_audio" in status.inner_text()
    assert Upload.objects.count() == 0
    shot(page, "producer-upload-refused-not-audio")

    page.set_input_files("#upload-file", str(audio_dir / "excerpt12.flac"))
    page.wait_for_url("**/studio/uploads/*/")
    page.get_by_text("You hold no active license for this recording").wait_for()
    page.get_by_label("Where you will use it").fill("FR")
    page.get_by_role("button", name="Separate").click()
    assert wait_job_state(page, ("done", "failed", "denied")) == "denied"
    decision = page.inner_text("#decision")
    assert "Refused" in decision and "“Song 12”" in decision and "You hold no license" in decision
    shot(page, "producer-job-refused")

    page.get_by_label("Message to the rights holder").fill("A remix for my EP, out in March.")
    page.get_by_role("button", name="Request a license").click()
    page.get_by_text("License request sent to Label A").wait_for()
    req = LicenseRequest.objects.get()
    assert req.status == "pending" and req.territory == "FR" and req.message.startswith("A remix")
    assert [r.title for r in req.recordings.all()] == ["Song 12"]

    # a form error is shown next to its field
    page.goto(f"/studio/uploads/{req.job.upload_id}/")
    page.get_by_label("Where you will use it").fill("F1")
    page.get_by_role("button", name="Separate").click()
    err = page.locator("#err-territory")
    err.wait_for()
    assert page.get_by_label("Where you will use it").get_attribute("aria-invalid") == "true"
    shot(page, "producer-form-error")


def run_job(client, path: Path, **body) -> dict:
    """A producer's job through the API, waited for (the worker fixture is running)."""
    from clearstem.jobs.models import Job

    up = upload_file(client, path).json()
    r = client.post("/api/v1/jobs/", {"upload": up["id"], "purpose": "remix", "territory": "GB", **body}, format="json")
    assert r.status_code == 201, r.content
    deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        job = Job.objects.get(pk=r.json()["id"])
        if job.state in Job.TERMINAL:
            return client.get(f"/api/v1/jobs/{job.pk}/").json()
        time.sleep(0.2)
    raise AssertionError("job did not finish")


def test_label_registers_grants_and_approves_a_request(page, people, clients, audio_dir, tmp_path):
    import subprocess

    from licensing.models import LicenseGrant, LicenseRequest, Recording
    from licensing.requests import do_create_license_requests

    recs, _ = register_catalog(clients, audio_dir, licensed=(11,))
    # some usage to chart: a separation and a download under the Song 11 license
    job = run_job(clients["producer"], audio_dir / "excerpt11.flac", requested_stems=["vocals"])
    assert job["state"] == "done", job
    assert clients["producer"].get(job["files"][0]["download_url"]).status_code == 200
    do_create_license_requests(people["producer"], recordings=[Recording.objects.get(id=recs[12]["id"])],
                               stems=["vocals", "drums"], purpose="remix", commercial=False, territory="GB",
                               message="For a club remix.")
    sign_in(page, people["label"])
    assert page.url.endswith("/catalog/")
    assert page.get_by_role("link", name="Requests 1").is_visible()

    # bulk registration: one good file, one refused, each with its own row
    bad = tmp_path / "cover-art.flac"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 4000)
    song13 = tmp_path / "track13.flac"  # title, artist and ISRC come from the file's tags
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(audio_dir / "song13.wav"), "-metadata", "title=Song 13",
                    "-metadata", "artist=The Synths", "-metadata", "ISRC=QZAAA2600013", str(song13)], check=True)
    # territories come first: the files wait for Register (nothing is sent while they are blank)
    page.get_by_label("1. Territories you hold").fill("")
    page.set_input_files("#bulk-files", [str(song13), str(bad)])
    page.get_by_role("button", name="Register 2 files").click()
    page.get_by_text("Set Territories you hold first: nothing was sent.").wait_for()
    assert Recording.objects.count() == 2
    page.get_by_label("1. Territories you hold").fill("WW")
    page.get_by_role("button", name="Register 2 files").click()
    page.get_by_text("1 registered, 0 already registered, 1 refused.").wait_for(timeout=60_000)
    assert page.inner_text("#recording-total") == "3"  # the count is live
    rows = page.locator("[data-filelist] li")
    assert "registered as “Song 13”" in rows.nth(0).inner_text()
    assert Recording.objects.get(title="Song 13").isrc == "QZAAA2600013"
    assert "refused" in rows.nth(1).inner_text() and "not_audio" in rows.nth(1).inner_text()
    page.locator("#recording-rows").get_by_text("Song 13").wait_for()
    shot(page, "label-catalog-bulk")

    page.get_by_label("Title, artist or ISRC").fill("song 12")
    page.wait_for_function("() => document.querySelectorAll('#recording-rows tr').length === 1")
    assert "Song 12" in page.inner_text("#recording-rows")
    shot(page, "label-catalog-search")

    # a grant form with mistakes: errors next to the fields, nothing created
    page.goto("/licenses/new/")
    page.get_by_label("Territories", exact=True).fill("WW, XYZ")
    page.get_by_role("button", name="Grant license").click()
    page.locator("#err-recordings").wait_for()
    assert "two-letter country codes" in page.inner_text("#err-territories")
    assert page.get_by_label("Territories", exact=True).get_attribute("aria-invalid") == "true"
    shot(page, "label-grant-form-errors")
    page.get_by_label("Song 13").check()
    page.get_by_label("Territories", exact=True).fill("WW")
    page.get_by_role("button", name="Grant license").click()
    page.locator("#err-licensee").wait_for()  # terms are fine now; nobody is licensed yet
    assert page.get_by_label("Song 13").is_checked()  # what was entered is kept
    assert not LicenseGrant.objects.filter(recordings__title="Song 13").exists()

    page.get_by_label("Producer organisation").select_option("producer-a")
    page.get_by_label("Downloads allowed (all users)").fill("25")
    page.get_by_role("button", name="Grant license").click()
    page.get_by_text("License granted (version 1, active).").wait_for()
    shot(page, "label-grant")

    page.get_by_role("link", name="Licenses", exact=True).click()
    page.wait_for_url("**/licenses/")  # a click starts the navigation; reading before it ends reads the old page
    assert "Song 13" in page.inner_text("main")
    shot(page, "label-licenses")
    page.locator("tbody tr").filter(has_text="Song 13").get_by_role("link").first.click()
    page.get_by_role("link", name="Amend terms").click()
    page.get_by_label("Downloads allowed (all users)").fill("40")
    page.get_by_role("button", name="Save as version 2").click()
    page.get_by_text("version 2 is now in force").wait_for()
    grant = LicenseGrant.objects.get(status="active", recordings__title="Song 13")
    assert grant.version == 2 and grant.max_downloads == 40

    # the request inbox: approve with narrower terms than asked
    page.get_by_role("link", name="Requests 1").click()
    page.wait_for_url("**/requests/")
    assert "For a club remix." in page.inner_text("main")
    shot(page, "label-requests")
    page.get_by_role("link", name="Review", exact=True).click()
    assert page.get_by_label("Drums", exact=True).is_checked() and page.get_by_label("Vocals", exact=True).is_checked()
    assert not page.get_by_label("Bass", exact=True).is_checked()
    shot(page, "label-request-review")
    page.get_by_label("Drums", exact=True).uncheck()
    page.get_by_label("Separations allowed (all users)").fill("3")
    page.get_by_label("Note to the producer").fill("Vocals only for now.")
    page.get_by_role("button", name="Approve with these terms").click()
    page.get_by_text("Approved: Producer A now holds license version 1.").wait_for()
    req = LicenseRequest.objects.get()
    assert req.status == "approved" and req.grant.stems == ["vocals"] and req.grant.max_separations == 3
    assert req.grant.licensee_org.slug == "producer-a" and req.response == "Vocals only for now."

    # suspending says what it will stop, then does it
    page.get_by_role("link", name="Suspend…").click()
    consequences = page.inner_text("#consequences")
    assert "Producer A can no longer start separations" in consequences and "reinstate" in consequences
    shot(page, "label-suspend-confirm")
    page.get_by_role("button", name="Yes, suspend").click()
    page.get_by_text("License suspended.").wait_for()
    assert page.inner_text("#grant-status") == "suspended"

    page.get_by_role("link", name="Usage", exact=True).click()
    page.wait_for_url("**/usage/")
    assert page.locator("svg.chart rect").count() == 2  # today: one separation, one download
    assert "Song 11" in page.inner_text("main")
    shot(page, "label-usage")
    page.get_by_role("link", name="Song 11").first.click()
    page.wait_for_url("**/catalog/*/")
    assert page.locator("svg.chart rect").count() == 2
    shot(page, "label-recording")
    page.get_by_role("link", name="Usage", exact=True).click()
    with page.expect_download() as dl:
        page.get_by_role("link", name="Export all as CSV").click()
    assert dl.value.suggested_filename == "usage.csv"
    path = tmp_path / "usage.csv"
    dl.value.save_as(path)
    assert path.read_text().startswith("date,license,version,grant,recording,isrc,title,kind,user,count")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/catalog/")
    assert fits_phone(page)
    shot(page, "label-catalog-phone")


def test_a_finished_job_for_the_auditor_the_producer_player_and_phones(chromium, page, people, clients, audio_dir,
                                                                       live_server, tmp_path):
    """One finished job (Song 11 licensed, an excerpt of it separated into vocals and drums), seen
    three ways in turn, each on the state the one before left:
    1. the auditor traces a stem to a verified chain: by id, by the stem's file, by a delivered
       FLAC's content credentials (phone width too), a file that never came out of ClearStem, a
       full ledger verification on the worker, the jobs page, the read-only admin, sign-out;
    2. the producer's player: waveforms of the upload and each stem, one transport for every
       stem, solo and mute by keyboard (the player keeps each stem's gain in data-gain);
    3. at 390 × 844 no page of any persona is wider than the screen: hashes and key ids wrap,
       tables stack, and the ledger page follows the ledger by itself.
    (Three tests once, each making this same job first.)"""
    from django.core.files.storage import default_storage

    from clearstem.jobs.models import Job, Stem
    from licensing.models import LicenseGrant, Recording
    from licensing.requests import do_create_license_requests

    recs, grant = register_catalog(clients, audio_dir, licensed=(11,))
    job = run_job(clients["producer"], audio_dir / "excerpt11.flac", requested_stems=["vocals", "drums"])
    assert job["state"] == "done", job
    assert Job.objects.get().state == "done"
    stem = Stem.objects.get(name="drums")

    # 1. the auditor traces a stem to a verified chain
    sign_in(page, people["platform"])
    assert page.url.endswith("/audit/")
    shot(page, "audit-find")
    page.get_by_role("searchbox", name="Id or hash").fill(str(stem.id))
    page.get_by_role("button", name="Find", exact=True).click()
    page.wait_for_url(f"**/audit/stems/{stem.id}/")
    assert page.inner_text("#chain-verdict") == "chain verified"
    for name in ("Record signature", "Stem file", "Ledger entry", "Signed tree head", "Inclusion proof",
                 "License terms v1"):
        assert page.locator(".checklist li.ok").filter(has_text=name).count() == 1, page.inner_text(".checklist")
    assert page.locator(".checklist li.bad").count() == 0
    text = page.inner_text("main")
    assert "“Song 11”" in text and "excerpt11.flac" in text and "Label A → Producer A" in text
    assert page.inner_text("#ledger-index") == str(stem.provenance.ledger_entry.index)
    shot(page, "audit-stem-chain")

    # the same chain, found from the file itself
    local = tmp_path / "mystery.wav"
    with default_storage.open(stem.file.name, "rb") as src, open(local, "wb") as dst:
        shutil.copyfileobj(src, dst)
    page.goto("/audit/")
    page.set_input_files("#audit-file", str(local))
    page.get_by_role("button", name="Find where it came from").click()
    page.wait_for_url(f"**/audit/stems/{stem.id}/")

    # a delivered FLAC: its content credentials and the stems found, ranked, at phone width too
    delivered = tmp_path / "drums-delivered.flac"
    r = clients["producer"].get(f"/api/v1/stems/{stem.id}/download/?format=flac")
    delivered.write_bytes(b"".join(r.streaming_content))
    page.goto("/audit/")
    page.set_input_files("#audit-file", str(delivered))
    page.get_by_role("button", name="Find where it came from").click()
    page.locator("#findings").wait_for()
    assert page.inner_text("#credentials-state") == "Trusted"
    top = page.locator("#findings > li").first
    assert "same bytes" in top.inner_text() and "content credentials" in top.inner_text()
    assert top.get_by_role("link").first.get_attribute("href") == f"/audit/stems/{stem.id}/"
    shot(page, "audit-find-by-file")
    page.set_viewport_size({"width": 390, "height": 844})
    assert fits_phone(page)
    shot(page, "audit-find-by-file-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    # a file that never came out of ClearStem
    page.goto("/audit/")
    page.set_input_files("#audit-file", str(audio_dir / "original.wav"))
    page.get_by_role("button", name="Find where it came from").click()
    page.get_by_text("This file did not come out of ClearStem").wait_for()

    # ledger health: a full verification runs on the worker and its verdict shows
    page.get_by_role("link", name="Ledger", exact=True).click()
    assert "never" in page.inner_text("#last-verification")
    page.get_by_role("button", name="Run a full verification").click()
    page.get_by_text("Full verification started").wait_for()
    deadline = time.monotonic() + 60
    while "passed" not in page.inner_text("#last-verification") and time.monotonic() < deadline:
        time.sleep(0.5)
        page.reload()
    assert "passed" in page.inner_text("#last-verification")
    shot(page, "audit-ledger")

    page.get_by_role("link", name="Jobs", exact=True).click()
    page.wait_for_url("**/audit/jobs/")
    text = page.inner_text("main")
    assert "Queues" in text and "default" in text and "No failed jobs." in text
    shot(page, "audit-jobs")

    # the Django admin lists ledger entries for auditors, read-only
    page.goto("/admin/provenance/ledgerentry/")
    assert "stem:" + str(stem.id) in page.inner_text("#result_list")
    assert page.get_by_role("link", name="Add ledger entry").count() == 0
    shot(page, "admin-ledger-entries")

    # auditors cannot open producer or label pages, and sign out ends the session
    assert page.goto("/studio/").status == 404
    page.goto("/audit/")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/signin/")
    page.goto("/audit/")
    assert "/signin/" in page.url
    shot(page, "signin")

    # 2. the producer listens: waveforms, solo and mute (after the auditor signed out above)
    sign_in(page, people["producer"])
    page.goto(f"/studio/jobs/{job['id']}/")
    assert page.locator(".stem .wave svg path").count() == 2 and page.locator("#original .wave svg").is_visible()
    assert page.locator(".stem .wave").first.bounding_box()["width"] > 300
    mixer = page.locator("#mixer")
    assert mixer.is_visible() and not page.locator(".stem audio[data-single]").first.is_visible()

    page.get_by_role("button", name="Play all stems").click()
    page.wait_for_function("document.querySelector('#mixer').mixer.position() > 0.5", timeout=30_000)
    assert mixer.get_attribute("data-state") == "playing"

    solo = page.get_by_role("button", name="Solo drums")
    solo.focus()
    page.keyboard.press("Space")
    assert solo.get_attribute("aria-pressed") == "true"
    vocals, drums = page.locator('.stem[data-name="vocals"]'), page.locator('.stem[data-name="drums"]')
    assert vocals.get_attribute("data-gain") == "0" and drums.get_attribute("data-gain") == "1"
    shot(page, "producer-job-player")
    page.get_by_role("button", name="Mute drums").click()
    assert drums.get_attribute("data-gain") == "0"
    page.get_by_role("button", name="Mute drums").click()
    page.get_by_label("Drums volume").fill("0.5")
    assert drums.get_attribute("data-gain") == "0.5" and vocals.get_attribute("data-gain") == "0"
    solo.click()  # solo off: every stem heard again
    assert vocals.get_attribute("data-gain") == "1"

    page.get_by_role("button", name="Pause all stems").click()
    assert mixer.get_attribute("data-state") == "paused"
    page.get_by_label("Position").fill("5")
    assert abs(page.evaluate("document.querySelector('#mixer').mixer.position()") - 5) < 0.2
    page.set_viewport_size({"width": 390, "height": 844})
    assert fits_phone(page)
    shot(page, "producer-job-player-phone")

    # 3. every main page fits a phone
    do_create_license_requests(people["producer"], recordings=[Recording.objects.get(id=recs[12]["id"])],
                               stems=["vocals", "drums"], purpose="remix", commercial=False, territory="GB",
                               message="For a club remix.")
    job_obj = Job.objects.get(pk=job["id"])
    assert clients["label"].post("/api/v1/recordings/offer/", {"open": True, "stems": ["vocals"], "purposes": ["remix"]},
                                 format="json").status_code == 200
    pages = {
        "producer": ["/studio/", f"/studio/uploads/{job_obj.upload_id}/", f"/studio/jobs/{job_obj.pk}/",
                     "/studio/licenses/", "/studio/catalog/", f"/studio/catalog/{recs[12]['id']}/"],
        "label": ["/catalog/", f"/catalog/{recs[11]['id']}/", "/licenses/",
                  f"/licenses/{LicenseGrant.objects.get(pk=grant['id']).pk}/", "/requests/", "/usage/", "/reviews/",
                  "/settings/notifications/"],
        "platform": ["/audit/", f"/audit/stems/{stem.pk}/", "/audit/ledger/", "/audit/jobs/",
                     f"/audit/jobs/{job_obj.pk}/", "/audit/ledger/consistency/?first=1&second=3",
                     f"/audit/?q={stem.sha256[:8]}"],
    }
    too_wide = []
    for who, paths in pages.items():
        context = chromium.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url)
        context.set_default_timeout(30_000)
        pg = context.new_page()
        errors: list[str] = []
        pg.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
        sign_in(pg, people[who])
        for path in paths:
            response = pg.goto(path)
            assert response.status < 400, (path, response.status)
            pg.wait_for_load_state("networkidle")
            width = pg.evaluate("document.documentElement.scrollWidth")
            # nor does anything scroll sideways inside the page (a table in its card, a proof)
            inner = pg.evaluate("""Array.from(document.querySelectorAll('main *')).filter(e =>
                e.scrollWidth > e.clientWidth + 1 && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX)
                && e.clientWidth > 0).map(e => e.tagName + '.' + e.className)""")
            if width > 390 or inner:
                too_wide.append((path, width, inner))
            if path == f"/studio/jobs/{job_obj.pk}/":
                shot(pg, "phone-producer-job")
            if path == f"/audit/stems/{stem.pk}/":
                shot(pg, "phone-audit-stem")
        # stacked tables keep every column's value in view, each under its column's name
        if who == "label":
            pg.goto("/licenses/")
            cell = pg.locator(".table-wrap td[data-label]").first
            assert cell.is_visible() and cell.get_attribute("data-label")
        if who == "producer":  # status, caps left and Withdraw are on screen, not past a sideways scroll
            pg.goto("/studio/licenses/")
            for target in (pg.get_by_role("button", name="Withdraw").first,
                           pg.locator("td[data-label='Downloads left']").first, pg.locator("td .pill").first):
                box = target.bounding_box()
                assert target.is_visible() and box and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
        # the ledger page follows the ledger by itself: a new entry shows without a reload
        if who == "platform":
            from django.db import transaction
            from playwright.sync_api import expect

            from provenance import ledger

            pg.goto("/audit/ledger/")
            size = int(pg.inner_text("#ledger-size"))
            with transaction.atomic():
                entry = ledger.do_record_event("stem", f"stem:{stem.pk}", {"note": "phone check"})
            expect(pg.locator("#ledger-size")).to_have_text(str(size + 1), timeout=15_000)
            pg.get_by_role("link", name=str(entry.index), exact=True).click()
            expect(pg.locator("#inclusion-verdict")).to_have_text("included")
        context.close()
        assert not errors, f"JavaScript errors on {who}'s pages: {errors}"
    assert not too_wide, f"pages wider than a 390 px phone: {too_wide}"


def test_invitation_accepted_and_password_reset_through_the_email(chromium, page, people, live_server, settings,
                                                                   mailoutbox):
    """A label admin invites by e-mail; the invitee opens the link on a phone, chooses a password and
    lands signed in; later they forget it and reset it through the e-mail's link."""
    import re

    settings.CLEARSTEM_PUBLIC_URL = live_server.url  # the links in the e-mails point at this server

    def link_in(message) -> str:
        (url,) = re.findall(r"https?://\S+", message.body)
        assert url.startswith(live_server.url + "/"), url
        return url

    sign_in(page, people["label"])
    page.get_by_role("link", name="Account", exact=True).click()
    page.get_by_role("link", name="Team and invitations").click()
    page.get_by_label("E-mail").fill("sam@example.test")
    page.get_by_label("Role").select_option("member")
    page.get_by_role("button", name="Send invitation").click()
    page.get_by_text("Invitation sent to sam@example.test.").wait_for()
    assert "sam@example.test" in page.inner_text("#pending-invitations")
    shot(page, "account-team")
    (invite,) = mailoutbox

    phone = chromium.new_context(viewport={"width": 390, "height": 844}, base_url=live_server.url)
    try:
        sam = phone.new_page()
        sam.goto(link_in(invite))
        assert "Join Label A" in sam.inner_text("h1") and fits_phone(sam)
        assert sam.get_by_label("User name").input_value() == "sam@example.test"
        sam.get_by_label("Password", exact=True).fill(PASSWORD)
        sam.get_by_label("Password again").fill(PASSWORD)
        shot(sam, "invitation-accept-phone")
        sam.get_by_role("button", name="Create my account").click()
        sam.wait_for_url("**/catalog/")
        assert "Welcome to Label A" in sam.inner_text(".messages") and "sam@example.test" in sam.inner_text(".who")
        sam.get_by_role("button", name="Sign out").click()
        sam.wait_for_url("**/signin/")

        # forgot the password: the sign-in page's link, the e-mail, a new password
        sam.get_by_role("link", name="Forgot password?").click()
        sam.get_by_label("E-mail").fill("sam@example.test")
        sam.get_by_role("button", name="Send the link").click()
        sam.get_by_text("Check your e-mail").wait_for()
        reset = mailoutbox[-1]
        assert len(mailoutbox) == 2 and reset.to == ["sam@example.test"]
        sam.goto(link_in(reset))
        new_password = "a-brand-new-passphrase-9"
        sam.get_by_label("New password", exact=True).fill(new_password)
        sam.get_by_label("New password confirmation").fill(new_password)
        sam.get_by_role("button", name="Set password").click()
        sam.get_by_text("Your new password is saved.").wait_for()
        assert fits_phone(sam)
        sam.get_by_role("link", name="Sign in").click()
        sam.get_by_label("E-mail").fill("sam@example.test")
        sam.get_by_label("Password").fill(new_password)
        sam.get_by_role("button", name="Sign in").click()
        sam.wait_for_url("**/catalog/")
        sam.goto(link_in(invite))  # the invitation worked once
        assert "already been used" in sam.inner_text("#invitation-problem")
    finally:
        phone.close()




def test_producer_finds_a_recording_asks_and_separates_under_the_license(chromium, page, people, clients, audio_dir,
                                                                        live_server, tmp_path):
    """The whole walk, license first: the producer finds Song 12 in the open catalog, hears an
    excerpt, asks before uploading; the label approves in its own browser; the upload's job
    form starts from the license and the job clears; the producer listens with solo and mute,
    downloads MP3, FLAC and a zip; the label revokes and the job page shows why downloads stopped."""
    from licensing.models import LicenseRequest

    recs, _ = register_catalog(clients, audio_dir, licensed=())
    r = clients["label"].post("/api/v1/recordings/offer/", {"open": True, "recordings": [recs[12]["id"]],
                                                             "stems": ["vocals", "drums", "bass", "other"],
                                                             "purposes": ["remix"], "territories": ["GB", "FR"]},
                              format="json")
    assert r.status_code == 200, r.content
    sign_in(page, people["producer"])
    page.get_by_role("link", name="Catalog", exact=True).click()
    page.get_by_label("Title, artist, ISRC or label").fill("QZ-AAA-26-00012")
    page.wait_for_function("() => document.querySelectorAll('#catalog-rows .catalog-item').length === 1")
    assert "Song 11" not in page.inner_text("#catalog-rows")  # closed recordings are not listed
    excerpt = page.locator("#catalog-rows audio").get_attribute("src")
    heard = page.request.get(excerpt)
    assert heard.status == 200 and heard.headers["content-type"] == "audio/mpeg" and len(heard.body()) < 400_000
    shot(page, "producer-catalog")
    page.get_by_role("link", name="Request a license for Song 12").click()
    page.get_by_label("Bass", exact=True).uncheck()
    page.get_by_label("Other (everything else)").uncheck()
    page.get_by_label("Where you will use it").fill("GB")
    page.get_by_role("button", name="Request a license").click()
    page.wait_for_url("**/studio/licenses/")
    req = LicenseRequest.objects.get()
    assert req.job_id is None and req.stems == ["vocals", "drums"] and req.territory == "GB"

    label = chromium.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    try:
        lp = label.new_page()
        sign_in(lp, people["label"])
        lp.goto(f"/requests/{req.pk}/")
        lp.get_by_role("button", name="Approve with these terms").click()
        lp.wait_for_url("**/licenses/*/")
    finally:
        label.close()

    page.reload()
    page.get_by_role("link", name="Upload and separate under it").click()
    page.set_input_files("#upload-file", str(audio_dir / "excerpt12.flac"))
    page.wait_for_url("**/studio/uploads/*/?license=*")
    assert page.get_by_label("Vocals", exact=True).is_checked() and page.get_by_label("Drums", exact=True).is_checked()
    assert page.get_by_label("Bass", exact=True).count() == 0  # only what the license covers is offered
    assert page.get_by_label("Where you will use it").input_value() == "GB"
    shot(page, "producer-job-form-from-license")
    page.get_by_role("button", name="Separate", exact=True).click()
    assert wait_job_state(page, ("done", "denied", "failed")) == "done"

    # the rest of the walk: listen with solo and mute, take MP3, FLAC and a zip, then the label
    # revokes and the same page turns its downloads into the reason
    assert "version 1: unlimited separations, unlimited downloads." in page.inner_text("main")
    page.get_by_role("button", name="Play all stems").click()
    page.wait_for_function("document.querySelector('#mixer').mixer.position() > 0.3", timeout=30_000)
    solo = page.get_by_role("button", name="Solo vocals")
    solo.focus()
    page.keyboard.press("Space")
    vocals, drums = page.locator('.stem[data-name="vocals"]'), page.locator('.stem[data-name="drums"]')
    assert vocals.get_attribute("data-gain") == "1" and drums.get_attribute("data-gain") == "0"
    page.get_by_role("button", name="Mute vocals").click()
    assert vocals.get_attribute("data-gain") == "0"
    page.get_by_role("button", name="Pause all stems").click()
    row = page.locator(".stem").filter(has_text="Vocals")
    for link, fmt in (("FLAC", "flac"), ("MP3 320", "mp3")):
        with page.expect_download() as dl:
            row.get_by_role("link", name=link).click()
        path = tmp_path / dl.value.suggested_filename
        dl.value.save_as(path)
        assert container(path) == fmt, (fmt, path.read_bytes()[:16])
    page.get_by_label("Zip of all stems as").select_option("mp3")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Download zip").click()
    dl.value.save_as(tmp_path / "stems.zip")
    with zipfile.ZipFile(tmp_path / "stems.zip") as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["format"] == "mp3" and {s["name"] for s in manifest["stems"]} == {"vocals", "drums"}
    shot(page, "walk-listened-and-downloaded")

    req.refresh_from_db()
    label = chromium.new_context(viewport={"width": 1280, "height": 900}, base_url=live_server.url)
    try:
        lp = label.new_page()
        sign_in(lp, people["label"])
        lp.goto(f"/licenses/{req.grant_id}/revoke/")
        lp.get_by_role("button", name="Yes, revoke").click()
        lp.wait_for_url(f"**/licenses/{req.grant_id}/")
    finally:
        label.close()
    page.reload()
    body = page.inner_text("main")
    assert "Downloads are stopped" in body and "is revoked: nothing more can be separated or downloaded" in body
    assert page.get_by_role("link", name="MP3 320").count() == 0
    assert page.get_by_role("button", name="Download zip").count() == 0
    shot(page, "walk-revoked")
