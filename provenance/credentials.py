"""C2PA content credentials: a stem's provenance carried inside the delivered file. No Django.

A provenance bundle is a separate JSON file: once a stem is renamed or shared without it, the
link to its license is gone. A C2PA manifest travels in the file itself (a RIFF chunk in WAV, a
metadata block in FLAC, an ID3 frame in MP3), and any C2PA reader checks its signature and its
hard binding (a SHA-256 over every byte of the file outside the manifest). We make and read
manifests with `c2pa-python`, the Content Authenticity Initiative's bindings to c2pa-rs.

What a stem's manifest holds (`manifest_definition`):
- the upload as the parent ingredient (its file name and format; its SHA-256 in the ClearStem
  assertion, and its own manifest, if the producer's file carried one);
- actions: opened (the upload), then edited — the separation, with ClearStem's version as the
  software agent and the model, weights SHA-256, weights licence, training-data statement and
  parameters;
- `org.clearstem.provenance`: the license grants (id, version, terms digest) or the signed
  ownership statement, the catalog match, and the whole provenance bundle (signed record,
  ledger entry index, inclusion proof, signed tree head, public keys) as canonical JSON, so the
  file alone is enough to check the chain offline;
- `c2pa.training-mining`: AI training and data mining allowed only when the license says so.

What it does not do: survive re-encoding (a new file has no manifest; `fingerprint` finds the
stem from its sound instead), or prove more than that ClearStem's key signed these statements
about these exact bytes.

The c2pa import is optional so that the standalone verifier runs without it (it then says that
it cannot check content credentials).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from .signing import canonical_bytes

try:
    import c2pa
except ImportError:  # the standalone verifier without its [c2pa] extra
    c2pa = None

ASSERTION = "org.clearstem.provenance"
ASSERTION_SCHEMA = "clearstem.content-credentials/v1"
TRAINING_MINING = "c2pa.training-mining"
MIME_TYPES = {"wav": "audio/wav", "flac": "audio/flac", "mp3": "audio/mpeg"}
_MIME_BY_SUFFIX = {".wav": "audio/wav", ".wave": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg"}
#: IPTC digital source type of audio made by a trained model from other media.
TRAINED_COMPOSITE = "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
#: ... and of audio made by an algorithm that was not trained on data (the `dsp` separator).
ALGORITHMIC = "http://cv.iptc.org/newscodes/digitalsourcetype/algorithmicMedia"
TDM_USES = ("c2pa.ai_training", "c2pa.ai_generative_training", "c2pa.ai_inference", "c2pa.data_mining")


class CredentialsUnavailable(RuntimeError):
    """c2pa-python is not installed here."""


def _require_c2pa():
    if c2pa is None:
        raise CredentialsUnavailable("content credentials need the c2pa-python package "
                                     "(pip install 'clearstem-verify[c2pa]')")
    return c2pa


def sniff_mime(data: bytes, name: str = "") -> str | None:
    """The MIME type C2PA needs, from the file's bytes (its name only as a fallback). An ID3v2
    tag is skipped first: c2pa-rs stores a FLAC file's manifest in one, ahead of `fLaC`."""
    if data[:3] == b"ID3" and len(data) >= 10:
        size = (data[6] & 0x7F) << 21 | (data[7] & 0x7F) << 14 | (data[8] & 0x7F) << 7 | (data[9] & 0x7F)
        rest = data[10 + size + (10 if data[5] & 0x10 else 0):]
        return "audio/flac" if rest[:4] == b"fLaC" else "audio/mpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "audio/wav"
    if data[:4] == b"fLaC":
        return "audio/flac"
    if len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:
        return "audio/mpeg"
    return _MIME_BY_SUFFIX.get(Path(name).suffix.lower())


def has_jumbf(path: str | Path) -> bool:
    """Does the file seem to carry a C2PA manifest store (a JUMBF box labelled c2pa)? A cheap
    scan for where c2pa-python is not installed; `read` is the real check."""
    with open(path, "rb") as fh:
        data = fh.read()
    return b"jumb" in data and b"c2pa" in data


def training_mining(record: dict) -> dict:
    """The C2PA training-and-data-mining assertion for a stem, from the rights it was made under.

    Under a license, AI training and data mining are `constrained` to the license when the job's
    purpose was `ml_training` (the license covered that purpose) and `notAllowed` otherwise;
    under an ownership statement the platform grants nothing, so the uses are `constrained` to
    whatever the uploader, who holds the rights, allows."""
    rights = record.get("rights") or {}
    purpose = (record.get("job") or {}).get("purpose")
    grants = ", ".join(f"{g.get('grant')} v{g.get('version')}" for g in rights.get("grants") or [])
    if rights.get("basis") == "attestation":
        info = "the uploader declared they hold the rights; ask them"
        entries = {u: {"use": "constrained", "constraint_info": info} for u in TDM_USES}
    elif purpose == "ml_training" and grants:
        info = f"only as ClearStem license {grants} allows"
        entries = {u: {"use": "constrained", "constraint_info": info} for u in TDM_USES}
    else:
        entries = {u: {"use": "notAllowed"} for u in TDM_USES}
    return {"label": TRAINING_MINING, "data": {"entries": entries}}


def manifest_definition(bundle: dict, record: dict, *, delivered_format: str, title: str,
                        software_version: str, bundle_url: str = "", with_parent: bool = True) -> dict:
    """The C2PA manifest definition of one delivered stem (see the module docstring).

    `with_parent`: the upload will be added as the parent ingredient (`embed`'s `parent`). An
    upload in a format C2PA cannot take as an ingredient (Ogg, AIFF…) is named only in the
    ClearStem assertion, and the first action is then `c2pa.created`."""
    model = record.get("model") or {}
    rights = record.get("rights") or {}
    stem = record.get("stem") or {}
    source = record.get("source") or {}
    edited = {
        "action": "c2pa.edited",
        "softwareAgent": {"name": "ClearStem", "version": software_version},
        "description": f"source separation: the {stem.get('name')} stem, by model {model.get('name')}",
        "parameters": {
            "model": model.get("name"), "weights_sha256": model.get("weights_sha256"),
            "weights_licence": model.get("weights_licence"), "training_data": model.get("training_data"),
            "inference": json.dumps(model.get("parameters") or {}, sort_keys=True),
            "stems_requested": ",".join((record.get("job") or {}).get("stems") or []),
        },
    }
    if model.get("weights_sha256"):
        edited["digitalSourceType"] = TRAINED_COMPOSITE
    attestation = rights.get("attestation")
    clearstem = {
        "schema": ASSERTION_SCHEMA,
        "stem": {"id": stem.get("id"), "name": stem.get("name"), "master_sha256": stem.get("sha256"),
                 "delivered_format": delivered_format},
        "job": (record.get("job") or {}).get("id"),
        "upload_sha256": source.get("sha256"),
        "basis": rights.get("basis"),
        "grants": [{k: str(g.get(k)) for k in ("grant", "version", "terms_digest", "recording")}
                   for g in rights.get("grants") or []],
        "ownership_statement_sha256": (canonical_sha256(attestation) if attestation else ""),
        "matches": ", ".join(f"{m.get('title')} ({m.get('isrc') or m.get('recording')})"
                             for m in (record.get("identification") or {}).get("matches") or []),
        "ledger_index": (bundle.get("ledger") or {}).get("index"),
        "tree_head_size": ((bundle.get("ledger") or {}).get("tree_head") or {}).get("size"),
        # the whole bundle as canonical JSON text: C2PA stores assertions as CBOR, which would
        # turn lists of small integers into byte strings; a string round-trips exactly
        "bundle_json": canonical_bytes(bundle).decode(),
    }
    if bundle_url:
        clearstem["bundle_url"] = bundle_url
    first = ({"action": "c2pa.opened", "parameters": {"ingredientIds": ["upload"]}} if with_parent else
             {"action": "c2pa.created", "digitalSourceType": TRAINED_COMPOSITE if model.get("weights_sha256")
              else ALGORITHMIC, "description": "made from an upload whose format cannot be a C2PA ingredient; "
                                              "its SHA-256 is in org.clearstem.provenance"})
    return {
        "claim_generator_info": [{"name": "ClearStem", "version": software_version}],
        "title": title,
        "format": MIME_TYPES[_container(delivered_format)],
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": [first, edited]}},
            {"label": ASSERTION, "data": clearstem},
            training_mining(record),
        ],
    }


def canonical_sha256(obj) -> str:
    return hashlib.sha256(canonical_bytes(obj)).hexdigest()


def _container(delivered_format: str) -> str:
    return "wav" if delivered_format.startswith("wav") else delivered_format


def parent_ingredient(title: str, record: dict) -> dict:
    """The upload as C2PA's parent ingredient: its name, its SHA-256 (as the instance id) and
    the catalog match, so a C2PA reader shows what the stem came from without ClearStem's
    assertion."""
    source = record.get("source") or {}
    matches = (record.get("identification") or {}).get("matches") or []
    found = "; ".join(f"{m.get('title')} ({m.get('isrc') or m.get('recording')})" for m in matches)
    return {"title": title, "relationship": "parentOf", "label": "upload",
            "instance_id": f"urn:sha256:{source.get('sha256')}",
            "description": f"catalog match: {found}" if found else "no catalog recording matched"}


def embed(src: str | Path, dst: str | Path, mime: str, manifest: dict, chain_pem: str, key_pem: str,
          parent: tuple[str | Path, str, dict] | None = None) -> None:
    """Sign `manifest` into a copy of `src` at `dst` with the Ed25519 key and its chain.

    `parent` = (path, MIME type, `parent_ingredient(...)`) of the upload: it becomes the parent
    ingredient (c2pa reads the file for a manifest of its own, so a producer's credentials
    carry through)."""
    lib = _require_c2pa()
    signer = lib.Signer.from_info(lib.C2paSignerInfo(lib.C2paSigningAlg.ED25519, chain_pem.encode(),
                                                     key_pem.encode(), None))
    try:
        builder = lib.Builder(manifest)
        if parent is not None:
            path, parent_mime, ingredient = parent
            with open(path, "rb") as fh:
                builder.add_ingredient(ingredient, parent_mime, fh)
        with open(src, "rb") as inp, open(dst, "w+b") as out:
            builder.sign(signer, mime, inp, out)
    finally:
        signer.close()


@dataclass
class Credentials:
    """What a C2PA reader found in a file. `state` is c2pa's: Trusted (signature valid and the
    certificate chains to a configured trust anchor), Valid (signature and binding valid, signer
    not checked against a trust list), Invalid; `None` when the file has no manifest."""
    found: bool
    mime: str | None = None
    state: str | None = None
    failures: list[dict] = field(default_factory=list)
    binding_ok: bool | None = None
    signer: dict = field(default_factory=dict)
    assertions: dict = field(default_factory=dict)
    ingredients: list[dict] = field(default_factory=list)
    bundle: dict | None = None
    problem: str = ""

    @property
    def clearstem(self) -> dict | None:
        return self.assertions.get(ASSERTION)


def read(path: str | Path, trust_anchors_pem: str | None = None) -> Credentials:
    """Read and validate the C2PA manifest of the file at `path` (see `Credentials`)."""
    lib = _require_c2pa()
    with open(path, "rb") as fh:  # streamed: a stem can be an hour of 24-bit audio
        mime = sniff_mime(_head(fh), str(path))
        if mime is None:
            return Credentials(found=False, problem="not a WAV, FLAC or MP3 file")
        fh.seek(0)
        return _read(lib, fh, mime, trust_anchors_pem)


def _head(fh) -> bytes:
    """The bytes `sniff_mime` needs: the first 16, or past an ID3v2 tag when there is one."""
    head = fh.read(16)
    if head[:3] == b"ID3" and len(head) >= 10:
        size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | (head[9] & 0x7F)
        head += fh.read(size + 20)
    return head


def _read(lib, stream, mime: str, trust_anchors_pem: str | None) -> Credentials:
    settings = {"version": 1, "verify": {"verify_trust": bool(trust_anchors_pem)}}
    if trust_anchors_pem:
        settings["trust"] = {"trust_anchors": trust_anchors_pem}
    try:
        reader = lib.Reader(mime, stream, context=lib.Context.from_dict(settings))
    except lib.C2paError as exc:
        if "ManifestNotFound" in type(exc).__name__ or "no JUMBF" in str(exc):
            return Credentials(found=False, mime=mime, problem="no content credentials in this file")
        return Credentials(found=True, mime=mime, state="Invalid", problem=f"unreadable manifest: {exc}")
    with reader:
        manifest = reader.get_active_manifest() or {}
        results = (reader.get_validation_results() or {}).get("activeManifest") or {}
        state = reader.get_validation_state()
    creds = Credentials(found=True, mime=mime, state=state, failures=list(results.get("failure") or []),
                        signer=manifest.get("signature_info") or {}, ingredients=manifest.get("ingredients") or [],
                        assertions={a["label"]: a.get("data") for a in manifest.get("assertions") or []})
    codes = {r.get("code") for r in results.get("success") or []}
    bad = {f.get("code") for f in creds.failures}
    creds.binding_ok = bool(codes & {"assertion.dataHash.match", "assertion.bmffHash.match"}) and not any(
        "Hash.mismatch" in (c or "") for c in bad)
    if (cs := creds.clearstem) and isinstance(cs.get("bundle_json"), str):
        try:
            creds.bundle = json.loads(cs["bundle_json"])
        except ValueError:
            creds.problem = "the ClearStem assertion's bundle is not JSON"
    return creds
