"""Plain words for what the system decided: identification results, rights decisions, and
what a license action will stop. Pure functions over the stored evidence."""
from __future__ import annotations

from clearstem.accounts.models import Organisation
from clearstem.jobs.models import Job, Stem
from licensing.engine import PURPOSES
from licensing.models import UsageEvent

PURPOSE_LABELS = {
    "remix": "Remix", "sample": "Sampling", "dj_performance": "DJ performance", "karaoke": "Karaoke",
    "education": "Education", "sync": "Sync (film, TV, ads)", "ml_training": "Machine-learning training",
}
assert set(PURPOSE_LABELS) == set(PURPOSES)
STEM_LABELS = {"vocals": "Vocals", "drums": "Drums", "bass": "Bass", "other": "Other (everything else)",
               "instrumental": "Instrumental (drums + bass + other)"}

#: Refusals a license from the rights holder would cure: the producer may ask for one.
LICENSE_CURABLE = {
    "no_license", "stem_not_licensed", "purpose_not_licensed", "commercial_not_licensed",
    "territory_not_licensed", "separation_cap_reached", "expired", "multiple_recordings_unlicensed",
}

REASON_TEXT = {
    "no_license": "You hold no license for this recording.",
    "stem_not_licensed": "Your license does not cover every stem you asked for",
    "purpose_not_licensed": "Your license does not cover this purpose",
    "commercial_not_licensed": "Your license is for non-commercial use only.",
    "territory_not_licensed": "Your license does not cover this territory",
    "separation_cap_reached": "Your license's separations are used up",
    "download_cap_reached": "Your license's downloads are used up",
    "expired": "Your license has expired",
    "not_yet_valid": "Your license is not valid yet",
    "revoked": "The rights holder revoked the license.",
    "suspended": "The rights holder suspended the license.",
    "attestation_required": "This audio matches nothing in the licensed catalog.",
    "multiple_recordings_unlicensed": "Your upload contains several catalog recordings, and not all are licensed.",
}


def mmss(seconds) -> str:
    if seconds is None:
        return "—"
    seconds = max(0, int(round(float(seconds))))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def holder_names(slugs) -> dict[str, str]:
    """Rights holders are stored by slug in the evidence; people read their names."""
    return dict(Organisation.objects.filter(slug__in=set(slugs)).values_list("slug", "name"))


def describe_matches(matches: list[dict]) -> list[dict]:
    names = holder_names(m.get("rights_holder") for m in matches)
    return [{**describe_match(m), "holder": names.get(m.get("rights_holder"), m.get("rights_holder"))}
            for m in matches]


def describe_match(m: dict) -> dict:
    """One identified recording: which one, where in the upload, where in the recording."""
    q0, dur, r0 = m.get("query_start_s", 0), m.get("duration_s", 0), m.get("ref_start_s", 0)
    speed = m.get("speed", 1.0) or 1.0
    where = f"{mmss(q0)}–{mmss(q0 + dur)} of your upload"
    source = f"{mmss(r0)}–{mmss(r0 + dur / speed)} of the recording"
    speed_note = f", played {abs(speed - 1) * 100:.1f} % {'faster' if speed > 1 else 'slower'}" \
        if abs(speed - 1) >= 0.004 else ""
    return {**m, "where": where, "source": source, "speed_note": speed_note,
            "confidence": f"{100 * m.get('score', 0):.0f} %"}


#: Evidence fields shown in their own words; the rest is listed as it was stored.
EVIDENCE_SHOWN = {"recording", "isrc", "title", "artist", "rights_holder", "source", "score", "reason",
                  "query_start_s", "query_end_s", "ref_start_s", "ref_end_s", "duration_s"}


def describe_evidence(e: dict) -> dict:
    """A suspected recording's evidence for its reviewer: which fingerprint saw it, how
    strongly, where in the upload and where in the recording, and everything else stored."""
    e = e or {}
    q0 = e.get("query_start_s")
    q1 = e.get("query_end_s")
    if q1 is None and q0 is not None and e.get("duration_s") is not None:
        q1 = q0 + e["duration_s"]
    r0 = e.get("ref_start_s")
    r1 = e.get("ref_end_s")
    if r1 is None and r0 is not None and q0 is not None and q1 is not None:
        r1 = r0 + (q1 - q0)
    score = e.get("score")
    return {
        "source": {"landmarks": "spectral-peak landmarks", "chromaprint": "Chromaprint"}.get(e.get("source"),
                                                                                             e.get("source") or "—"),
        "score": f"{100 * float(score):.0f} %" if isinstance(score, int | float) else "—",
        "where": f"{mmss(q0)}–{mmss(q1)} of the upload" if q0 is not None else None,
        "source_segment": f"{mmss(r0)}–{mmss(r1)} of the recording" if r0 is not None else None,
        "reason": e.get("reason") or "",
        "other": sorted((k, v) for k, v in e.items() if k not in EVIDENCE_SHOWN),
    }


def explain_decision(job) -> dict:
    """The rights decision on a job, for the producer: a headline, the reasons in plain words,
    and whether asking the rights holder for a license could help."""
    d = job.decision or {}
    matches = describe_matches(d.get("matches", []))
    titles = {m["recording"]: m for m in matches}
    if not d:
        return {"state": "pending", "headline": "Checking your upload against the licensed catalog…",
                "matches": matches, "reasons": [], "can_request": False}
    if d.get("pending_review") and job.state == Job.State.REVIEW:
        waiting = [r for r in job.reviews.all() if r.outcome == "pending"]
        holders = sorted({r.rights_holder.name for r in waiting})
        return {"state": "review", "headline": f"Waiting for review by {', '.join(holders) or 'the rights holder'}.",
                "detail": "Identification found partial evidence of these catalog recordings. Their rights holder "
                          "checks it: if they release it, your job is decided on your licenses as usual; "
                          "no separation runs and nothing is counted against your licenses until then.",
                "matches": matches, "reviews": list(job.reviews.all()), "reasons": [], "can_request": False}
    if d.get("allowed"):
        if d.get("basis") == "attestation":
            headline = "Cleared on your ownership statement: the audio matches nothing in the licensed catalog."
        else:
            headline = "Cleared: every recording in your upload is covered by your license."
        grants = [{**g, "title": titles.get(g.get("recording"), {}).get("title", g.get("recording"))}
                  for g in d.get("grants", [])]
        return {"state": "cleared", "headline": headline, "matches": matches, "grants": grants, "reasons": [],
                "can_request": False}
    reasons = []
    for r in d.get("reasons", []):
        rec = titles.get(r.get("recording"), {})
        lead = REASON_TEXT.get(r["code"], "")
        detail = r.get("detail", "")
        if lead.endswith("."):  # a whole sentence already
            text = lead
        elif lead:
            text = f"{lead} — {detail}." if detail else f"{lead}."
        else:
            text = detail[:1].upper() + detail[1:] + ("" if detail.endswith(".") else ".")
        reasons.append({"code": r["code"], "text": text, "title": r.get("title") or rec.get("title"),
                        "isrc": r.get("isrc") or rec.get("isrc"),
                        "rights_holder": rec.get("holder") or r.get("rights_holder")})
    codes = {r["code"] for r in reasons}
    return {"state": "refused", "headline": "Refused: no separation was run.", "matches": matches,
            "reasons": reasons, "can_request": bool(matches) and bool(codes & LICENSE_CURABLE),
            "attestation_required": "attestation_required" in codes}


def grant_stop_summary(grant, action: str) -> dict:
    """What suspending or revoking `grant` will stop, counted now (for the confirmation page)."""
    job_ids = UsageEvent.objects.filter(grant__family=grant.family, kind="separation").values_list("job_id", flat=True)
    running = Job.objects.filter(id__in=job_ids, state__in=["cleared", "queued", "separating"]).count()
    delivered = Stem.objects.filter(job_id__in=job_ids).count()
    who = grant.licensee_org.name if grant.licensee_org_id else (
        grant.licensee_user.username if grant.licensee_user_id else "every verified producer")
    lines = [
        f"{who} can no longer start separations of {grant.recordings.count()} recording(s) under this license.",
        f"Downloads and zip exports of the {delivered} stem(s) already made under it will be refused.",
    ]
    if running:
        lines.append(f"{running} separation job(s) cleared under it and not finished will be stopped now.")
    else:
        lines.append("No separation under it is running now.")
    if action == "suspend":
        lines.append("You can reinstate a suspended license later; its terms and counters stay as they are.")
    else:
        lines.append("Revocation is final: the license cannot be reinstated (grant a new one instead).")
    lines.append("Stems already downloaded cannot be recalled; the ledger records this event, signed.")
    return {"lines": lines, "running": running, "delivered": delivered}
