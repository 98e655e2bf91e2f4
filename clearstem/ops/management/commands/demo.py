"""`manage.py demo [--no-serve]`: the embedded-default walkthrough, end to end over HTTP.

Creates demo organisations and users, synthesises a small catalog (no copyrighted audio),
registers it as the label, grants a license, then — as the producer, through the real API of a
local server with an in-process worker — uploads a licensed catalog excerpt, an unlicensed
catalog excerpt and an original track with an ownership attestation, and prints what
happened: match, decision, stems with hashes, provenance verified; then the ledger, and one
stem downloaded as FLAC and checked by the content credentials (C2PA) embedded in it alone.
"""
from __future__ import annotations

import json
import secrets
import threading
import time
from datetime import timedelta
from pathlib import Path

import requests
import soundfile as sf
from django.conf import settings
from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.core.wsgi import get_wsgi_application
from django.utils import timezone
from rest_framework.authtoken.models import Token

from clearstem.accounts.models import Organisation, User
from clearstem.accounts.services import do_create_org, do_create_user
from clearstem.synth import render_song
from clearstem.worker import start_reconciler, start_worker
from provenance.ledger import verify_ledger
from provenance.verify import Verdict, verify_bundle, verify_embedded

LABEL, PRODUCER, PLATFORM = "northwind-records", "studio-fern", "clearstem-ops"
CATALOG = [  # seed, title, artist, ISRC
    (101, "Harbour Lights", "The Northwinds", "QZ-NWR-26-00001"),
    (102, "Copper Sky", "The Northwinds", "QZ-NWR-26-00002"),
    (103, "Lanterns", "Mira Vale", "QZ-NWR-26-00003"),
]


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class Command(BaseCommand):
    help = "Run the embedded-default walkthrough and print a report; then keep serving unless --no-serve."

    def add_arguments(self, parser):
        parser.add_argument("--no-serve", action="store_true", help="exit after the report")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, no_serve, port, **_):
        t0 = time.perf_counter()
        call_command("migrate", interactive=False, verbosity=0)
        logins = self.ensure_accounts()
        songs_dir = Path(settings.DATA_DIR) / "demo-audio"
        songs_dir.mkdir(parents=True, exist_ok=True)
        files = self.synthesise(songs_dir)

        if settings.CLEARSTEM_EMBEDDED_WORKER:
            start_worker()
            start_reconciler()
        server = ThreadedWSGIServer(("127.0.0.1", 0 if no_serve else port), QuietHandler)
        server.set_app(StaticFilesHandler(get_wsgi_application()))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{server.server_address[1]}/api/v1"
        self.out(f"server: {base}/  (broker: {'in-process' if settings.CLEARSTEM_EMBEDDED_WORKER else 'redis'})")

        label = Api(base, logins["label"]["token"])
        producer = Api(base, logins["producer"]["token"])
        recs = []
        for (_seed, title, artist, isrc), path in zip(CATALOG, files["catalog"]):
            r = label.post("/recordings/", files={"file": path.open("rb")}, data={"title": title, "artist": artist, "isrc": isrc})
            recs.append(r)
        self.out(f"catalog: {len(recs)} recordings registered by {LABEL} ({', '.join(r['title'] for r in recs)})")
        existing = [g for g in label.get("/licenses/")["results"] if recs[0]["id"] in g["recordings"] and g["status"] == "active"]
        grant = existing[0] if existing else label.post("/licenses/", json={
            "licensee": PRODUCER, "recordings": [recs[0]["id"]], "stems": ["vocals", "drums", "bass", "other"],
            "purposes": ["remix"], "commercial": False, "territories": ["WW"],
            "valid_from": timezone.now().isoformat(), "valid_until": (timezone.now() + timedelta(days=365)).isoformat(),
            "max_separations": 100, "max_downloads": 400, "attribution": "Harbour Lights — The Northwinds (Northwind Records)",
        })
        self.out(f"license: grant {grant['id']} to {PRODUCER} for {recs[0]['title']!r} (remix, non-commercial, worldwide)")

        pub = {k["keyid"]: k["pem"] for k in requests.get(f"{base}/ledger/keys/", timeout=30).json()["keys"]}
        # what a distributor fetches once to check content credentials: the platform's C2PA roots
        anchors = requests.get(f"{base}/ledger/content-credentials/", timeout=30).json()["trust_anchors"]
        cases = [
            ("licensed catalog excerpt", files["licensed"], None),
            ("unlicensed catalog excerpt", files["unlicensed"], None),
            ("original track + attestation", files["original"], {"accepted": True}),
        ]
        failures = 0
        example = None
        for name, path, attestation in cases:
            self.out(f"\n== {name}: {path.name}")
            up = producer.post("/uploads/", files={"file": path.open("rb")})
            self.out(f"   upload {up['id']}: {up['duration_s']:.1f} s {up['codec_name']} {up['sample_rate']} Hz, sha256 {up['sha256'][:16]}…")
            body = {"upload": up["id"], "requested_stems": ["vocals", "drums", "bass", "other"], "purpose": "remix",
                    "commercial": False, "territory": "GB"}
            if attestation:
                body["attestation"] = attestation
            job = producer.post("/jobs/", json=body)
            job = producer.wait_job(job["id"])
            d = job["decision"] or {}
            for m in d.get("matches", []):
                self.out(f"   match: {m['title']} [{m['isrc']}] score {m['score']:.2f}, query {m['query_start_s']:.1f} s "
                         f"↔ ref {m['ref_start_s']:.1f} s for {m['duration_s']:.1f} s")
            if not d.get("matches"):
                self.out("   match: none in the catalog")
            self.out(f"   decision: {'ALLOWED' if d.get('allowed') else 'DENIED'} (basis {d.get('basis')})"
                     + "".join(f"\n     - {r['code']}: {r['detail']}" for r in d.get("reasons", [])))
            self.out(f"   job: {job['state']}" + (f" ({job['error_code']})" if job["error_code"] else ""))
            for stem in job["files"]:
                audio = producer.get_bytes(stem["download_url"])
                bundle = producer.get(stem["provenance_url"])
                tmp = songs_dir / f"check-{stem['id']}.wav"
                tmp.write_bytes(audio)
                verdict = verify_bundle(tmp, bundle, list(pub.values()))
                if example is None and verdict.ok:
                    example = self.save_example(songs_dir / "verify-example", stem["name"], audio, bundle, pub)
                    example["download_url"] = stem["download_url"]
                tmp.unlink()
                failures += not verdict.ok
                self.out(f"   stem {stem['name']:<6} {stem['sha256'][:16]}…  provenance "
                         f"{'VERIFIED' if verdict.ok else 'FAILED: ' + '; '.join(verdict.problems)}")
            expected = {"licensed catalog excerpt": "done", "unlicensed catalog excerpt": "denied",
                        "original track + attestation": "done"}[name]
            failures += job["state"] != expected
        head = requests.get(f"{base}/ledger/tree-head/", timeout=30).json()
        report = verify_ledger()
        failures += not report.ok
        self.out(f"\n== ledger: {report.size} entries; latest public tree head: size {head['size']}, "
                 f"root {head['root_hash'][:16]}… (key {head['key_id'][:12]}…); verify_ledger: "
                 + ("OK" if report.ok else f"FAIL at index {report.first_bad_index}: {report.problem}"))
        if example:
            self.out(f"   offline check of a stem, as a distributor would run it:\n     {example['command']}")
            self.out(f"   the same check on a copy with one byte changed: {example['tampered']}")
            failures += not self.check_content_credentials(producer, example, pub, anchors).ok
        self.out(f"\ndemo finished in {time.perf_counter() - t0:.1f} s; "
                 f"{'all checks passed' if not failures else f'{failures} checks FAILED'}")
        if failures:
            raise CommandError("demo checks failed")
        if no_serve:
            server.shutdown()
            return
        self.out(f"\nOpen http://127.0.0.1:{port}/ and sign in as any of these (the platform user can also read /admin/);"
                 " API clients use the tokens:")
        for role, info in logins.items():
            self.out(f"  {role:<9} {info['email']:<24} password {info['password']}  token {info['token']}")
        self.out("Press Ctrl-C to stop.")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            server.shutdown()

    def out(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()

    def save_example(self, folder: Path, name: str, audio: bytes, bundle: dict, pub: dict) -> dict:
        """Leave a stem, its bundle and the public key on disk, and check a tampered copy."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{name}.wav").write_bytes(audio)
        (folder / f"{name}.provenance.json").write_text(json.dumps(bundle, indent=2))
        (folder / "clearstem-ledger.pub.pem").write_text(next(iter(pub.values())))
        tampered = bytearray(audio)
        tampered[len(tampered) // 2] ^= 1
        (folder / f"{name}-tampered.wav").write_bytes(bytes(tampered))
        verdict = verify_bundle(folder / f"{name}-tampered.wav", bundle, list(pub.values()))
        return {
            "folder": folder, "name": name,
            "command": f"python -m provenance.verify {folder / (name + '.wav')} {folder / (name + '.provenance.json')} "
                       f"--pubkey {folder / 'clearstem-ledger.pub.pem'}",
            "tampered": "NOT VERIFIED (" + "; ".join(verdict.problems) + ")" if not verdict.ok else "unexpectedly verified",
        }

    def check_content_credentials(self, api: Api, example: dict, pub: dict, anchors: str) -> Verdict:
        """Download the example stem as FLAC and check it by its embedded C2PA manifest alone (no
        bundle), with the platform's public key and C2PA trust anchors; print every check."""
        folder, name = example["folder"], example["name"]
        path = folder / f"{name}.flac"
        path.write_bytes(api.get_bytes(example["download_url"] + "?format=flac"))
        trust = folder / "clearstem-c2pa-trust.pem"
        trust.write_text(anchors)
        verdict = verify_embedded(path, trusted_pems=list(pub.values()), c2pa_trust_pems=[anchors])
        self.out(f"   content credentials of the {name} stem downloaded as FLAC, checked from the file alone (C2PA):")
        for check in verdict.checks:
            self.out(f"     {check.name}: {'ok' if check.ok else 'FAILED'} — {check.detail}")
        self.out("     verdict: " + ("VERIFIED" if verdict.ok else "NOT VERIFIED (" + "; ".join(verdict.problems) + ")"))
        self.out(f"     python -m provenance.verify {path} --pubkey {folder / 'clearstem-ledger.pub.pem'} "
                 f"--c2pa-trust {trust}")
        return verdict

    def ensure_accounts(self) -> dict:
        orgs = {
            "label": (LABEL, "label", "Northwind Records"),
            "producer": (PRODUCER, "producer", "Studio Fern"),
            "auditor": (PLATFORM, "platform", "ClearStem Operations"),
        }
        logins = {}
        for role, (slug, kind, name) in orgs.items():
            if not Organisation.objects.filter(slug=slug).exists():
                do_create_org(slug, kind, name, verified=True)
            email = f"{role}@demo.clearstem.test"
            password = secrets.token_urlsafe(9)
            user = User.objects.filter(username=email).first()
            if user is None:  # the same onboarding path as `create_user`: nobody is a superuser
                user, _ = do_create_user(email, slug, User.Role.ADMIN, password=password)
            else:  # a re-run prints fresh passwords
                user.set_password(password)
                user.save(update_fields=["password"])
            token, _ = Token.objects.get_or_create(user=user)
            logins[role] = {"email": email, "password": password, "token": token.key}
        return logins

    def synthesise(self, folder: Path) -> dict:
        out = {"catalog": []}
        songs = {}
        for seed, title, *_ in CATALOG:
            path = folder / f"{seed}-{title.lower().replace(' ', '-')}.wav"
            songs[seed] = render_song(seed, seconds=30)
            if not path.exists():
                sf.write(path, songs[seed].mixture.T, 44100, subtype="PCM_16")
            out["catalog"].append(path)
        sr = 44100
        out["licensed"] = folder / "upload-harbour-lights-excerpt.flac"
        sf.write(out["licensed"], songs[101].mixture[:, 6 * sr:26 * sr].T, sr, subtype="PCM_16")
        out["unlicensed"] = folder / "upload-copper-sky-excerpt.flac"
        sf.write(out["unlicensed"], songs[102].mixture[:, 4 * sr:24 * sr].T, sr, subtype="PCM_16")
        out["original"] = folder / "upload-my-own-track.wav"
        sf.write(out["original"], render_song(7001, seconds=20).mixture.T, sr, subtype="PCM_16")
        return out


class Api:
    """A tiny client for the walkthrough; raises with the API's error code on failure."""

    def __init__(self, base: str, token: str):
        self.base = base
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Token {token}"

    def _check(self, resp):
        if resp.status_code >= 400:
            raise CommandError(f"{resp.request.method} {resp.url} -> {resp.status_code}: {resp.text[:300]}")
        return resp

    def get(self, path):
        return self._check(self.session.get(self._url(path), timeout=60)).json()

    def get_bytes(self, path):
        return self._check(self.session.get(self._url(path), timeout=120)).content

    def post(self, path, **kw):
        return self._check(self.session.post(self._url(path), timeout=300, **kw)).json()

    def _url(self, path):
        return path.replace("/api/v1", self.base) if path.startswith("/api/v1") else self.base + path

    def wait_job(self, job_id, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = self.get(f"/jobs/{job_id}/")
            if job["state"] in ("done", "denied", "failed", "cancelled"):
                return job
            time.sleep(0.25)
        raise CommandError(f"job {job_id} did not finish in {timeout} s")
