"""The ledger on PostgreSQL: tamper cases, the append-only trigger, key rotation, appends from
several processes, and the public ledger API."""
import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from provenance import keys as key_module
from provenance.keys import get_signer
from provenance.ledger import (
    current_tree_head,
    do_append_entry,
    do_record_event,
    inclusion_proof,
    ledger_size,
    root_at,
    verify_ledger,
)
from provenance.merkle import leaf_hash, verify_consistency, verify_inclusion
from provenance.models import LedgerEntry, TreeHead
from provenance.signing import Signer, canonical_bytes, public_pem

ROOT = Path(__file__).resolve().parent.parent


def append_events(n, start=0):
    with transaction.atomic():
        return [do_record_event("download", f"test:{i}", {"n": i}) for i in range(start, start + n)]


@pytest.fixture
def log(db, settings):
    settings.CLEARSTEM_TREE_HEAD_MAX_AGE_S = 0  # every read after growth signs a fresh head
    append_events(5)
    current_tree_head()  # a signed head at size 5
    append_events(7, start=5)
    current_tree_head()  # and at 12
    return 12


def raw_sql(sql, params=()):
    """Bypass the append-only trigger, as an attacker with database access would."""
    with connection.cursor() as cur:
        for table in ("provenance_ledgerentry", "provenance_ledgernode", "provenance_treehead"):
            cur.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        cur.execute(sql, params)


def test_appends_build_a_verifiable_log(log):
    report = verify_ledger()
    assert report.ok and report.size == 12 and report.heads_checked == 2
    head = current_tree_head()
    assert head.size == 12 and bytes(head.root_hash) == root_at(12)
    entry = LedgerEntry.objects.get(index=7)
    verify_inclusion(7, 12, bytes(entry.leaf_hash), inclusion_proof(7, 12), bytes(head.root_hash))
    assert json.loads(bytes(entry.body))["index"] == 7


def test_appends_need_the_callers_transaction(transactional_db):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        do_append_entry("download", "x", {})
    assert ledger_size() == 0


def test_database_rejects_update_and_delete(log):
    for sql in ("UPDATE provenance_ledgerentry SET kind = 'export' WHERE index = 3",
                "DELETE FROM provenance_ledgerentry WHERE index = 11",
                "UPDATE provenance_treehead SET size = 99 WHERE size = 12",
                "DELETE FROM provenance_ledgernode"):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cur:
            cur.execute(sql)
    assert verify_ledger().ok


def check_fails(index, fragment):
    report = verify_ledger()
    assert not report.ok
    assert report.first_bad_index == index, report
    assert fragment in report.problem
    out = subprocess_verify()
    assert out.returncode == 1 and f"FAIL at index {index}" in out.stdout


def subprocess_verify():
    """`manage.py verify_ledger` in-process (the command exits 1 through SystemExit)."""
    from io import StringIO

    class Out:
        pass

    buf, res = StringIO(), Out()
    try:
        call_command("verify_ledger", stdout=buf)
        res.returncode = 0
    except SystemExit as exc:
        res.returncode = exc.code
    res.stdout = buf.getvalue()
    return res


def test_edited_row_is_detected(log):
    body = bytes(LedgerEntry.objects.get(index=4).body).replace(b'"subject":"test:4"', b'"subject":"test:9"')
    raw_sql("UPDATE provenance_ledgerentry SET body = %s WHERE index = 4", [bytes(body)])
    check_fails(4, "leaf hash")


def test_edited_row_with_recomputed_leaf_is_detected(log):
    entry = LedgerEntry.objects.get(index=6)
    obj = json.loads(bytes(entry.body))
    obj["subject"] = "test:forged"
    body = canonical_bytes(obj)
    raw_sql("UPDATE provenance_ledgerentry SET body = %s, leaf_hash = %s WHERE index = 6", [body, leaf_hash(body)])
    check_fails(6, "stored tree node (0, 6)")  # the hashes stored above it no longer match


def test_deleted_row_is_detected(log):
    raw_sql("DELETE FROM provenance_ledgerentry WHERE index = 8")
    check_fails(8, "missing")


def test_reordered_rows_are_detected(log):
    a, b = LedgerEntry.objects.get(index=2), LedgerEntry.objects.get(index=3)
    raw_sql("UPDATE provenance_ledgerentry SET body = %s, leaf_hash = %s WHERE index = 2", [bytes(b.body), bytes(b.leaf_hash)])
    raw_sql("UPDATE provenance_ledgerentry SET body = %s, leaf_hash = %s WHERE index = 3", [bytes(a.body), bytes(a.leaf_hash)])
    check_fails(2, "reordered")


def test_inserted_row_is_detected(log):
    body = canonical_bytes({"v": 1, "index": 12, "kind": "download", "subject": "x", "at": "2026-01-01T00:00:00+00:00",
                            "envelope": get_signer().sign_envelope({"forged": True})})
    raw_sql("INSERT INTO provenance_ledgerentry (index, kind, subject, body, leaf_hash, created_at) "
            "VALUES (12, 'download', 'x', %s, %s, now())", [body, leaf_hash(body)])
    check_fails(12, "beyond the log's recorded size 12")


def test_record_resigned_with_another_key_is_detected(log):
    entry = LedgerEntry.objects.get(index=9)
    obj = json.loads(bytes(entry.body))
    payload = json.loads(base64.b64decode(obj["envelope"]["payload"]))
    obj["envelope"] = Signer(Ed25519PrivateKey.generate()).sign_envelope(payload)
    body = canonical_bytes(obj)
    raw_sql("UPDATE provenance_ledgerentry SET body = %s, leaf_hash = %s WHERE index = 9", [body, leaf_hash(body)])
    check_fails(9, "no signature by a known key")


def test_tree_head_with_wrong_size_is_detected(log):
    raw_sql("UPDATE provenance_treehead SET size = 6 WHERE size = 5")
    check_fails(5, "signed tree head at size 6")


def test_key_rotation_keeps_old_signatures_valid(log, tmp_path, settings):
    old_pub = tmp_path / "old.pub.pem"
    old_pub.write_text(public_pem(get_signer().public_key))
    old_kid = get_signer().key_id
    new_key = tmp_path / "new.pem"
    from provenance.signing import create_key_file

    create_key_file(new_key)
    settings.CLEARSTEM_SIGNING_KEY_FILE = str(new_key)
    settings.CLEARSTEM_VERIFY_KEY_FILES = [str(old_pub)]
    key_module.get_signer.cache_clear()
    try:
        assert get_signer().key_id != old_kid
        append_events(3, start=100)
        head = current_tree_head()
        assert head.key_id == get_signer().key_id and head.size == 15
        assert verify_ledger().ok  # old entries and heads verify with the retired key
        settings.CLEARSTEM_VERIFY_KEY_FILES = []
        report = verify_ledger()
        assert not report.ok and report.first_bad_index == 0
    finally:
        key_module.get_signer.cache_clear()


def test_concurrent_appends_from_several_processes_keep_one_log(transactional_db):
    get_signer()  # the key exists before the workers start, so all of them share it
    db = connection.settings_dict
    env = dict(os.environ, DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}")
    script = (
        "import django, sys; django.setup()\n"
        "from django.db import transaction\n"
        "from provenance.ledger import do_record_event\n"
        "p = sys.argv[1]\n"
        "for i in range(25):\n"
        "    with transaction.atomic():\n"
        "        do_record_event('download', f'proc:{p}:{i}', {'p': p, 'i': i})\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(p)], cwd=ROOT, env=env) for p in range(4)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0, 0]
    assert ledger_size() == 100
    assert sorted(LedgerEntry.objects.values_list("index", flat=True)) == list(range(100))
    assert len(set(LedgerEntry.objects.values_list("subject", flat=True))) == 100
    assert verify_ledger().ok


def test_ledger_api(log, clients, client):
    head = client.get("/api/v1/ledger/tree-head/").json()
    assert head["size"] == 12 and head["root_hash"] == root_at(12).hex()
    note = client.get("/api/v1/ledger/checkpoint/").content.decode()
    assert note.startswith(f"{head['origin']}\n12\n") and "\n\n\u2014 " in note
    r = client.get("/api/v1/ledger/consistency/?first=5&second=12").json()
    verify_consistency(5, 12, root_at(5), root_at(12), [bytes.fromhex(p) for p in r["proof"]])
    inc = client.get("/api/v1/ledger/inclusion/?index=3&size=12").json()
    verify_inclusion(3, 12, bytes.fromhex(inc["leaf_hash"]), [bytes.fromhex(p) for p in inc["proof"]], root_at(12))
    for bad in ("first=9&second=5", "first=1&second=999", "first=x&second=2", "first=-1&second=2"):
        resp = client.get(f"/api/v1/ledger/consistency/?{bad}")
        assert resp.status_code == 400 and resp.json()["code"] == "invalid_range", bad
    assert client.get("/api/v1/ledger/inclusion/?index=12&size=12").json()["code"] == "invalid_range"
    assert clients["producer"].get("/api/v1/ledger/entries/").status_code == 403
    entries = clients["platform"].get("/api/v1/ledger/entries/?start=2&end=5").json()
    assert [e["index"] for e in entries["entries"]] == [2, 3, 4] and entries["size"] == 12
    assert client.get("/api/v1/ledger/entries/").status_code == 401


def test_reads_reuse_tree_heads(db, settings):
    settings.CLEARSTEM_TREE_HEAD_MAX_AGE_S = 3600
    append_events(3)
    first = current_tree_head()
    append_events(2, start=3)
    assert current_tree_head().size == 3  # fresh enough for monitors
    assert current_tree_head(covering=2).size == 3  # covers entry 2
    assert current_tree_head(covering=4).size == 5  # entry 4 needs a newer head
    assert TreeHead.objects.count() == 2 and first.size == 3
