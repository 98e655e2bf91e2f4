"""Trust in the database (issue 18) on the real PostgreSQL: the runtime role cannot rewrite the
ledger, usage or license terms whatever it tries, and the whole app still works as that role;
`migrate` runs as the owner and re-grants; terms are frozen for good, whatever the status path;
a superuser rewrite with recomputed hashes is caught against an earlier published checkpoint."""
import contextlib
import io
import json

import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from clearstem.jobs.models import Job
from licensing.grants import do_activate_grant
from licensing.models import LicenseGrant, UsageEvent
from provenance.checkpoint import sign_tree_head
from provenance.keys import get_signer
from provenance.ledger import current_tree_head, do_record_event, node_key, origin, verify_ledger
from provenance.merkle import Frontier, leaf_hash
from provenance.models import LedgerEntry, LedgerVerification, TreeHead
from provenance.publication import CheckpointConflict, checkpoint_name, do_publish_checkpoint, publish_checkpoint
from provenance.signing import canonical_bytes
from sharedcore.errors import Conflict, DomainError
from tests.conftest import grant_body, running_worker, upload_file
from tests.test_jobs import wait_for

RUNTIME = "clearstem_app"


@contextlib.contextmanager
def connected_as(role: str):
    """Every new connection of this process (worker and server threads too) logs in as `role`:
    they all read the one settings dict of the default alias."""
    settings_dict = connection.settings_dict
    saved = settings_dict["USER"], settings_dict["PASSWORD"]
    connection.close()
    settings_dict["USER"], settings_dict["PASSWORD"] = role, ""
    try:
        yield
    finally:
        connection.close()
        settings_dict["USER"], settings_dict["PASSWORD"] = saved


@pytest.fixture
def runtime_role(transactional_db):
    """The runtime role, granted by `setup_db_roles` as the owner; the test then runs as it.
    (`transactional_db`: the role's own connections must see what the test commits.)"""
    owner = connection.settings_dict["USER"]
    with connection.cursor() as cur:
        cur.execute(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{RUNTIME}') "
                    f"THEN CREATE ROLE {RUNTIME} LOGIN; END IF; END $$")
    out = io.StringIO()
    call_command("setup_db_roles", "--runtime-role", RUNTIME, stdout=out)
    assert f"runtime role {RUNTIME!r}" in out.getvalue()
    with connected_as(RUNTIME):
        yield {"role": RUNTIME, "owner": owner}


def current_user() -> str:
    with connection.cursor() as cur:
        cur.execute("SELECT current_user")
        return cur.fetchone()[0]


def refused(sql, params=()):
    """Run `sql` in its own transaction; return (SQLSTATE, message) of the refusal."""
    with pytest.raises(DatabaseError) as err, transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, params)
    cause = err.value.__cause__
    return getattr(cause, "sqlstate", None), str(err.value).splitlines()[0]


def test_the_runtime_role_cannot_rewrite_the_ledger_or_license_terms(runtime_role, catalog):
    assert current_user() == RUNTIME
    grant_id, rec12 = catalog["grant"]["id"], catalog["recordings"][12]["id"]
    entries = LedgerEntry.objects.count()
    assert entries >= 1 and LicenseGrant.objects.get(pk=grant_id).status == "active"
    attempts = {
        "TRUNCATE provenance_ledgerentry CASCADE": "permission denied for table provenance_ledgerentry",
        "TRUNCATE licensing_usageevent": "permission denied for table licensing_usageevent",
        "TRUNCATE accounts_user CASCADE": "permission denied for table accounts_user",
        "ALTER TABLE provenance_ledgerentry DISABLE TRIGGER USER": "must be owner of table provenance_ledgerentry",
        "ALTER TABLE provenance_ledgerentry DISABLE TRIGGER ALL": "must be owner of table provenance_ledgerentry",
        "DROP TRIGGER provenance_ledgerentry_append_only ON provenance_ledgerentry":
            "must be owner of relation provenance_ledgerentry",
        "SET session_replication_role = replica": 'permission denied to set parameter "session_replication_role"',
        "UPDATE provenance_ledgerentry SET kind = 'export' WHERE index = 0":
            "permission denied for table provenance_ledgerentry",
        "DELETE FROM provenance_ledgerentry WHERE index = 0": "permission denied for table provenance_ledgerentry",
        "DELETE FROM provenance_ledgernode": "permission denied for table provenance_ledgernode",
        "UPDATE provenance_treehead SET size = size + 1": "permission denied for table provenance_treehead",
        "UPDATE provenance_ledgerstate SET size = 0": "the ledger only grows",
        "UPDATE licensing_usageevent SET kind = 'export'": "permission denied for table licensing_usageevent",
        f"UPDATE licensing_licensegrant SET max_downloads = 1000 WHERE id = '{grant_id}'":
            "permission denied for table licensing_licensegrant",
        f"UPDATE licensing_licensegrant SET stems = '[\"vocals\"]' WHERE id = '{grant_id}'":
            "permission denied for table licensing_licensegrant",
        f"UPDATE licensing_licensegrant SET status = 'draft' WHERE id = '{grant_id}'": "never returns to draft",
        f"DELETE FROM licensing_licensegrant WHERE id = '{grant_id}'":
            "permission denied for table licensing_licensegrant",
        "DELETE FROM licensing_licensegrant_recordings": "never deleted",
        f"INSERT INTO licensing_licensegrant_recordings (licensegrant_id, recording_id) "
        f"VALUES ('{grant_id}', '{rec12}')": "recordings never change",
        "CREATE TABLE sneaky (id int)": "permission denied for schema public",
        "ALTER TABLE licensing_licensegrant ADD COLUMN sneaky int": "must be owner of table licensing_licensegrant",
        "CREATE TRIGGER sneaky BEFORE INSERT ON provenance_ledgerentry FOR EACH ROW "
        "EXECUTE FUNCTION clearstem_append_only()": "permission denied for table provenance_ledgerentry",
    }
    outcomes = {}
    for sql, expected in attempts.items():
        sqlstate, message = refused(sql)
        outcomes[sql] = (sqlstate, message)
        assert expected in message, (sql, message)
        assert sqlstate == "42501", (sql, sqlstate, message)  # insufficient_privilege, triggers included
    for sql, (sqlstate, message) in outcomes.items():
        print(f"{sqlstate} {message[:90]:90} <- {sql[:80]}")
    grant = LicenseGrant.objects.get(pk=grant_id)
    assert grant.status == "active" and grant.max_downloads == 20 and grant.recordings.count() == 1
    assert LedgerEntry.objects.count() == entries and verify_ledger().ok
    # the model layer says the same before the database has to (and it is the rule on SQLite)
    grant.max_downloads = 1000
    with pytest.raises(Conflict, match="never change"):
        grant.save()


def test_the_app_works_as_the_runtime_role(runtime_role, clients, catalog, audio_dir, live_server, settings):
    """Register, grant (the catalog fixture, already as the runtime role), upload, job → done on
    a real worker, download, export, amend, suspend, reinstate, revoke, remove a recording,
    verify the ledger against a checkpoint fetched over HTTP."""
    settings.CLEARSTEM_TREE_HEAD_MAX_AGE_S = 0
    assert current_user() == RUNTIME
    producer, label = clients["producer"], clients["label"]
    grant_id = catalog["grant"]["id"]
    with running_worker():
        up = upload_file(producer, audio_dir / "excerpt11.flac").json()
        r = producer.post("/api/v1/jobs/", {"upload": up["id"], "requested_stems": ["vocals", "drums"], "purpose": "remix",
                                            "territory": "GB"}, format="json")
        assert r.status_code == 201, r.content
        job = wait_for(r.json()["id"], timeout=120)
    assert job.state == "done", (job.state, job.error_code)
    stem = Job.objects.get(pk=job.pk).stem_files.order_by("name").first()
    dl = producer.get(f"/api/v1/stems/{stem.pk}/download/")
    assert dl.status_code == 200 and b"".join(dl.streaming_content)[:4] == b"RIFF"
    bundle = producer.get(f"/api/v1/stems/{stem.pk}/provenance/")
    assert bundle.status_code == 200 and bundle.json()["ledger"]["tree_head"]["size"] >= 2
    assert producer.get(f"/api/v1/jobs/{job.pk}/export/").status_code == 200
    assert UsageEvent.objects.filter(kind="download").exists()

    v2 = label.post(f"/api/v1/licenses/{grant_id}/amend/", {"max_downloads": 5}, format="json")
    assert v2.status_code == 201 and v2.json()["version"] == 2, v2.content
    v2_id = v2.json()["id"]
    assert label.post(f"/api/v1/licenses/{v2_id}/suspend/").json()["status"] == "suspended"
    assert label.post(f"/api/v1/licenses/{v2_id}/reinstate/").json()["status"] == "active"
    assert label.post(f"/api/v1/licenses/{v2_id}/revoke/").json()["status"] == "revoked"
    assert producer.get(f"/api/v1/stems/{stem.pk}/download/").json()["code"] == "revoked"
    rec12 = catalog["recordings"][12]["id"]
    assert label.delete(f"/api/v1/recordings/{rec12}/").status_code == 204  # unlicensed: removable

    # a fresh signed head, published on commit; the log verifies against it fetched over HTTP
    head = requests.get(f"{live_server.url}/api/v1/ledger/tree-head/", timeout=30).json()
    name = checkpoint_name(head["size"], bytes.fromhex(head["root_hash"]))
    assert default_storage.exists(name)
    out = io.StringIO()
    call_command("verify_ledger", "--against", f"{live_server.url}/api/v1/ledger/checkpoint/", "--against", name,
                 stdout=out)
    assert out.getvalue().startswith("OK: ") and "consistent with 2 earlier checkpoint(s)" in out.getvalue()
    run = LedgerVerification.objects.order_by("-started_at").first()
    assert run.ok is True and run.size == head["size"]
    assert current_user() == RUNTIME
    out = io.StringIO()
    call_command("setup_db_roles", "--runtime-role", RUNTIME, "--check", stdout=out)
    assert out.getvalue().startswith("OK")


def test_migrate_runs_as_the_owner_and_grants_the_runtime_role(runtime_role, settings):
    db = connection.settings_dict
    settings.DATABASE_OWNER_URL = f"postgres://{runtime_role['owner']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    with connected_as(runtime_role["owner"]), connection.cursor() as cur:  # privileges drift
        cur.execute(f"REVOKE ALL ON licensing_usageevent FROM {RUNTIME}")
        cur.execute(f"GRANT UPDATE, TRUNCATE ON provenance_ledgerentry TO {RUNTIME}")
    with pytest.raises(CommandError, match="privileges_differ"):
        call_command("setup_db_roles", "--check", stdout=io.StringIO())  # the runtime role is DATABASE_URL's
    out = io.StringIO()
    call_command("migrate", "--noinput", stdout=out)
    assert f"Granted runtime role {RUNTIME!r} its privileges" in out.getvalue()
    assert current_user() == RUNTIME  # back on the runtime role after migrating
    call_command("setup_db_roles", "--check", stdout=io.StringIO())
    assert refused("TRUNCATE provenance_ledgerentry")[0] == "42501"
    # the owner must be another role, and name the same database
    settings.DATABASE_OWNER_URL = f"postgres://{RUNTIME}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    with pytest.raises(CommandError, match="same_role"):
        call_command("migrate", "--noinput", stdout=io.StringIO())
    settings.DATABASE_OWNER_URL = f"postgres://{runtime_role['owner']}@{db['HOST']}:{db['PORT']}/elsewhere"
    with pytest.raises(CommandError, match="owner_database_mismatch"):
        call_command("migrate", "--noinput", stdout=io.StringIO())


def test_setup_db_roles_refuses_an_unfit_runtime_role(db):
    for role, code in ((connection.settings_dict["USER"], "same_role"), ("nobody_here", "unknown_role"),
                       ("x; DROP TABLE y", "invalid_role")):
        with pytest.raises(CommandError, match=code):
            call_command("setup_db_roles", "--runtime-role", role, stdout=io.StringIO())
    with pytest.raises(CommandError, match="no_runtime_role"):
        call_command("setup_db_roles", stdout=io.StringIO())


# --- terms frozen for good -------------------------------------------------------------------

def test_terms_are_frozen_for_good_whatever_the_status_path(clients, catalog):
    grant_id, rec12 = catalog["grant"]["id"], catalog["recordings"][12]["id"]
    # the detour (active → draft, change the cap, → active) fails at its first step, for every role
    with pytest.raises(DatabaseError, match="never returns to draft"), transaction.atomic():
        LicenseGrant.objects.filter(pk=grant_id).update(status="draft")
        LicenseGrant.objects.filter(pk=grant_id).update(max_downloads=1000)
        LicenseGrant.objects.filter(pk=grant_id).update(status="active")
    for status in ("suspended", "revoked"):  # from any status out of draft
        with pytest.raises(DatabaseError, match="never returns to draft"), transaction.atomic():
            LicenseGrant.objects.filter(pk=grant_id).update(status=status)
            LicenseGrant.objects.filter(pk=grant_id).update(status="draft")
    for change in ({"max_downloads": 1000}, {"family": rec12}, {"stems": ["vocals"]}):
        with pytest.raises(DatabaseError, match="immutable"), transaction.atomic():
            LicenseGrant.objects.filter(pk=grant_id).update(**change)
    grant = LicenseGrant.objects.get(pk=grant_id)
    with pytest.raises(DatabaseError, match="recordings never change"), transaction.atomic():
        grant.recordings.add(rec12)
    # the model refuses too, before any SQL, so the rule holds where no trigger does (SQLite):
    # here the triggers are off (replica mode, the test cluster's superuser) and it still refuses
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        grant.status = "draft"
        with pytest.raises(Conflict) as err:
            grant.save(update_fields=["status"])
        assert err.value.code == "terms_frozen"
        grant.status, grant.max_downloads = "active", 1000
        with pytest.raises(Conflict, match="max_downloads"):
            grant.save()
    assert LicenseGrant.objects.get(pk=grant_id).max_downloads == 20
    # amendments still make a new version through the service
    v2 = clients["label"].post(f"/api/v1/licenses/{grant_id}/amend/", {"max_downloads": 1000}, format="json")
    assert v2.status_code == 201 and v2.json()["version"] == 2 and v2.json()["max_downloads"] == 1000


def test_a_draft_may_change_until_it_is_activated(clients, catalog):
    rec12 = catalog["recordings"][12]["id"]
    draft = clients["label"].post("/api/v1/licenses/", grant_body([rec12], status="draft"), format="json").json()
    grant = LicenseGrant.objects.get(pk=draft["id"])
    grant.max_downloads = 7
    grant.save()  # a draft's terms may change
    active = do_activate_grant(grant.pk, grant.licensor)
    assert active.status == "active" and LicenseGrant.objects.get(pk=grant.pk).max_downloads == 7
    fresh = LicenseGrant.objects.get(pk=grant.pk)
    fresh.max_downloads = 8
    with pytest.raises(Conflict, match="never change"):
        fresh.save()


# --- witnessed tree heads --------------------------------------------------------------------

def append_events(n, start=0):
    with transaction.atomic():
        for i in range(start, start + n):
            do_record_event("download", f"test:{i}", {"n": i})


def verify_against(*sources):
    out = io.StringIO()
    args = [a for s in sources for a in ("--against", s)]
    try:
        call_command("verify_ledger", *args, stdout=out)
        return 0, out.getvalue()
    except SystemExit as exc:
        return exc.code, out.getvalue()


def rewrite_as_superuser(index: int, subject: str) -> None:
    """What an attacker with full database access (and, worst case, the signing key) does: edit
    an old entry, recompute its leaf, every stored node, the frontier, and re-sign every stored
    tree head over the forged roots, with every trigger off."""
    rows = list(LedgerEntry.objects.order_by("index").values_list("index", "body"))
    frontier, nodes, roots = Frontier(), [], {}
    bodies = {}
    for i, body in rows:
        body = bytes(body)
        if i == index:
            obj = json.loads(body)
            obj["subject"] = subject  # outside the signed envelope: its signature still verifies
            body = canonical_bytes(obj)
        bodies[i] = body
        nodes += frontier.append(leaf_hash(body))
        roots[frontier.size] = frontier.root()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SET LOCAL session_replication_role = replica")
        cur.execute("UPDATE provenance_ledgerentry SET body = %s, leaf_hash = %s WHERE index = %s",
                    [bodies[index], leaf_hash(bodies[index]), index])
        cur.execute("DELETE FROM provenance_ledgernode")
        cur.executemany("INSERT INTO provenance_ledgernode (key, hash) VALUES (%s, %s)",
                        [(node_key(*coord), h) for coord, h in nodes])
        cur.execute("UPDATE provenance_ledgerstate SET frontier = %s", [frontier.to_bytes()])
        for head in TreeHead.objects.all():
            signed = sign_tree_head(get_signer().private_key, origin(), head.size, roots[head.size], head.timestamp)
            cur.execute("UPDATE provenance_treehead SET root_hash = %s, signature = %s, checkpoint = %s WHERE size = %s",
                        [roots[head.size], signed["signature"], signed["checkpoint"], head.size])


def test_a_superuser_rewrite_is_caught_against_an_earlier_published_checkpoint(
        db, settings, tmp_path, django_capture_on_commit_callbacks):
    settings.CLEARSTEM_TREE_HEAD_MAX_AGE_S = 0
    append_events(5)
    with django_capture_on_commit_callbacks(execute=True):
        head5 = current_tree_head()  # published when its transaction commits
    append_events(7, start=5)
    with django_capture_on_commit_callbacks(execute=True):
        head12 = current_tree_head()
    name5 = checkpoint_name(5, bytes(head5.root_hash))
    name12 = checkpoint_name(12, bytes(head12.root_hash))
    with default_storage.open(name5, "rb") as fh:
        assert fh.read().decode() == head5.checkpoint
    assert name5.startswith("checkpoints/5-") and default_storage.exists(name12)
    copy = tmp_path / "checkpoint-5.txt"
    copy.write_text(head5.checkpoint)
    code, out = verify_against(name5, name12.split("/", 1)[1], str(copy))  # by name, bare name, file
    assert code == 0 and "consistent with 3 earlier checkpoint(s)" in out, out

    # the prefix never overwrites: the same text is a no-op, another text is refused
    assert publish_checkpoint(5, bytes(head5.root_hash), head5.checkpoint) == name5
    with pytest.raises(CheckpointConflict):
        publish_checkpoint(5, bytes(head5.root_hash), head5.checkpoint.replace("\n5\n", "\n6\n"))

    rewrite_as_superuser(3, "test:forged")
    assert verify_ledger().ok  # the rewrite is self-consistent: plain verification cannot see it
    code, out = verify_against(name5)
    assert code == 1 and "not an extension of the checkpoint at size 5" in out, out
    code, out = verify_against(str(copy))
    assert code == 1 and "rewritten" in out
    assert verify_against(name12)[0] == 1
    last = LedgerVerification.objects.order_by("-started_at").first()
    assert last.ok is False and "against checkpoint" in last.problem

    # a forged or foreign checkpoint is refused for what it is
    bad = head5.checkpoint.replace("\n5\n", "\n4\n")
    (tmp_path / "bad.txt").write_text(bad)
    code, out = verify_against(str(tmp_path / "bad.txt"))
    assert code == 1 and "signature does not verify" in out
    with pytest.raises(CommandError, match="checkpoint_not_found"):
        call_command("verify_ledger", "--against", "99-nope.txt", stdout=io.StringIO())


def test_two_publishers_racing_on_one_checkpoint_agree_and_leave_one_whole_file(settings, monkeypatch):
    """A commit's hook and a worker's retry can publish the same head at once. The second must
    not find the name while the first is still writing it: it would read half a checkpoint and
    raise a false conflict (an alarm). Here the second publisher runs in the middle of the
    first's write; both succeed, and one file with the whole text remains."""
    import uuid

    import provenance.publication as publication

    settings.CLEARSTEM_CHECKPOINT_PREFIX = f"checkpoints-test-{uuid.uuid4().hex}"
    root = bytes(range(32))
    note = "clearstem.test/ledger\n5\n" + "x" * 200_000 + "\n"  # several chunks
    name = checkpoint_name(5, root)
    raced = []

    class Racing(ContentFile):
        def read(self, *args):
            if not raced:
                raced.append(None)
                raced[0] = publish_checkpoint(5, root, note)  # the other publisher, mid-write
            return super().read(*args)

    monkeypatch.setattr(publication, "ContentFile", Racing)
    try:
        assert publish_checkpoint(5, root, note) == name and raced == [name]
        with default_storage.open(name, "rb") as fh:
            assert fh.read() == note.encode()
        assert default_storage.listdir(settings.CLEARSTEM_CHECKPOINT_PREFIX) == ([], [name.rsplit("/", 1)[1]])
        with pytest.raises(CheckpointConflict):  # and a different text under that name is still refused
            publish_checkpoint(5, root, note.replace("x", "y", 1))
    finally:
        for leftover in default_storage.listdir(settings.CLEARSTEM_CHECKPOINT_PREFIX)[1]:
            default_storage.delete(f"{settings.CLEARSTEM_CHECKPOINT_PREFIX}/{leftover}")


def test_witnesses_get_each_checkpoint_and_failures_are_retried(db, settings, monkeypatch):
    settings.CLEARSTEM_WITNESS_URLS = ["https://witness-a.test/add", "https://witness-b.test/add"]
    append_events(3)
    head = current_tree_head()
    posted = []

    def post(url, data, headers, timeout):
        posted.append((url, data.decode()))
        resp = requests.Response()
        resp.status_code, resp.url = (503 if "witness-b" in url else 200), url
        return resp

    monkeypatch.setattr("provenance.publication.requests.post", post)
    with pytest.raises(DomainError, match="witness-b.test") as err:  # raised: Dramatiq retries with backoff
        do_publish_checkpoint(head.size)
    assert err.value.code == "witness_unavailable"
    assert posted == [(url, head.checkpoint) for url in settings.CLEARSTEM_WITNESS_URLS]
    assert default_storage.exists(checkpoint_name(head.size, bytes(head.root_hash)))  # the storage copy is there
    settings.CLEARSTEM_WITNESS_URLS = ["https://witness-a.test/add"]
    do_publish_checkpoint(head.size)  # idempotent: the same name and text again is fine
