"""Production settings pass Django's deploy checks; the OpenAPI schema is served."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_check_deploy_passes_with_production_settings(tmp_path):
    env = dict(os.environ)
    env.update({
        "DJANGO_SECRET_KEY": "x" * 20 + "production-secret-for-the-check-only-" + "y" * 20,
        "DJANGO_ALLOWED_HOSTS": "clearstem.example.com", "CLEARSTEM_SECURE": "true",
        "CLEARSTEM_DATA_DIR": str(tmp_path), "CLEARSTEM_AUTO_CREATE_DEV_KEY": "false",
    })
    proc = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no issues" in proc.stdout


def test_openapi_schema_lists_the_api(clients):
    r = clients["producer"].get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    for p in ("/api/v1/uploads/", "/api/v1/jobs/", "/api/v1/jobs/{id}/cancel/", "/api/v1/stems/{id}/download/",
              "/api/v1/stems/{id}/provenance/", "/api/v1/recordings/", "/api/v1/licenses/{id}/revoke/"):
        assert p in paths, p


def test_public_keys_are_served_without_auth(client):
    r = client.get("/api/v1/ledger/keys/")
    assert r.status_code == 200 and r.json()["keys"][0]["pem"].startswith("-----BEGIN PUBLIC KEY-----")
