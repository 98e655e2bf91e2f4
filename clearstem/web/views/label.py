"""Label pages: the catalog (search, bulk registration), grants (create, amend, suspend,
reinstate, revoke), the request inbox, and usage over time."""
from __future__ import annotations

import uuid
from datetime import timedelta

from django.contrib import messages
from django.db.models import Count, Q
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from clearstem.accounts import scoping as scope
from clearstem.accounts.models import Organisation
from clearstem.api.catalog import RecordingEditSerializer, RemixOfferSerializer
from clearstem.api.errors import http_status
from clearstem.api.serializers import (
    LicenseAmendSerializer,
    LicenseApproveSerializer,
    LicenseDenySerializer,
    LicenseGrantSerializer,
    RecordingCreateSerializer,
)
from clearstem.api.views import csv_response
from fingerprint.catalog import do_register_recording, do_remove_recording
from licensing import catalog as catalog_edits
from licensing import grants, reports
from licensing import requests as license_requests
from licensing.engine import PURPOSES, STEM_CHOICES
from licensing.models import LicenseGrant, UsageEvent
from sharedcore.errors import DomainError
from sharedcore.media import read_tags

from .. import present
from ..charts import stacked_bars
from ..forms import bind, error_dict, form_data
from .common import persona, refuse, wants_json, writer

label_page = persona("label")
GRANT_LISTS = ("recordings", "stems", "purposes")
GRANT_CODES = ("territories", "excluded_territories")
GRANT_OPTIONAL = ("valid_from", "valid_until", "max_separations", "max_downloads", "max_separations_per_user",
                  "max_downloads_per_user", "licensee", "licensee_user", "revenue_share_pct")
USAGE_DAYS = 30
USAGE_CSV_FIELDS = ["date", "license", "version", "grant", "recording", "isrc", "title", "kind", "user", "count"]


def _id_or_404(raw: str) -> uuid.UUID:
    """An object id from a form or query string: one that is not a well-formed id names nothing
    (404), rather than reaching the database as a malformed UUID (a server error)."""
    try:
        return uuid.UUID(str(raw).strip())
    except ValueError:
        raise Http404("no such object") from None


def _chart(events, title):
    series = reports.usage_by_day(events, days=USAGE_DAYS)
    return {"svg": stacked_bars(series, title=title), "series": series,
            "totals": {k: sum(r[k] for r in series) for k in reports.USAGE_KINDS}}


# --- catalog ---------------------------------------------------------------------------------

@label_page
def catalog(request):
    q = request.GET.get("q", "").strip()
    recs = scope.visible_recordings(request.user).annotate(
        grant_count=Count("grants", filter=~Q(grants__status="superseded"), distinct=True),
        separations=Count("usage", filter=Q(usage__kind="separation"), distinct=True))
    if q:
        recs = recs.filter(Q(title__icontains=q) | Q(artist__icontains=q) | Q(isrc__icontains=q.replace("-", "")))
    ctx = {**_catalog_context(request), "recordings": recs.order_by("title")[:200], "q": q}
    if request.headers.get("HX-Request"):  # live search: only the results
        return render(request, "web/label/_recording_rows.html", ctx)
    return render(request, "web/label/catalog.html", ctx)


def _catalog_context(request) -> dict:
    mine = scope.visible_recordings(request.user)
    return {"recordings": mine.order_by("title")[:200], "total": mine.count(),
            "open_count": mine.filter(open_for_requests=True).count(), "offer": _offer_initial(),
            "offer_errors": {}, **_offer_choices()}


@label_page
@require_POST
@writer
def recording_create(request):
    """One file per request: the bulk drop zone sends each file here and shows its answer."""
    data = form_data(request.POST, codes=("territories",), optional=("title", "artist", "isrc"))
    data["file"] = request.FILES.get("file")
    valid, errors = bind(RecordingCreateSerializer, data)
    status = 400
    if valid:
        f = valid["file"]
        try:
            if f.size == 0:
                raise DomainError("empty_file", "the file is empty")
            tags = read_tags(f.temporary_file_path())
            title = valid.get("title") or tags.get("title") or f.name.rsplit(".", 1)[0].replace("_", " ")
            rec, created = do_register_recording(
                request.user.organisation, f.temporary_file_path(), f.name, title=title,
                artist=valid.get("artist") or tags.get("artist", ""), isrc=valid.get("isrc") or tags.get("isrc") or None,
                territories=valid.get("territories") or ["WW"])
            if wants_json(request):  # the drop zone counts each verdict and shows the catalog's size
                return JsonResponse({"id": str(rec.id), "title": rec.title, "created": created,
                                     "verdict": "registered" if created else "already_registered",
                                     "duration_s": rec.duration_s,
                                     "total": scope.visible_recordings(request.user).count()},
                                    status=201 if created else 200)
            messages.success(request, f"Registered “{rec.title}”." if created else f"“{rec.title}” was already registered.")
            return redirect("web:recording", rec.id)
        except DomainError as exc:
            errors, status = error_dict(exc), http_status(exc)
            code = exc.code
    else:
        code = "invalid"
    if wants_json(request):
        field, detail = next(iter(errors.items()))
        return JsonResponse({"code": code, "detail": detail if field == "__all__" else f"{field}: {detail}",
                             "errors": errors}, status=status)
    ctx = {**_catalog_context(request), "form": request.POST, "errors": errors}
    return render(request, "web/label/catalog.html", ctx, status=status)


def _recording_context(request, rec, edit_form=None, errors=None, offer_form=None, offer_errors=None):
    events = UsageEvent.objects.filter(recording=rec)
    return {
        "rec": rec, "chart": _chart(events, f"Daily usage of {rec.title}, last {USAGE_DAYS} days"),
        "grants": rec.grants.exclude(status="superseded").select_related("licensee_org", "licensee_user"),
        "in_use": rec.grants.exists() or rec.usage.exists() or rec.reviews.exists(),
        "revisions": rec.revisions.select_related("replaced_by"),
        "edit": edit_form or {"title": rec.title, "artist": rec.artist, "isrc": rec.isrc or "", "revision": rec.revision},
        "errors": errors or {}, "offer": offer_form or _offer_initial(rec), "offer_errors": offer_errors or {},
        **_offer_choices(),
    }


def _offer_initial(rec=None):
    if rec is not None and rec.offer_stems:
        return {"stems": rec.offer_stems, "purposes": rec.offer_purposes, "commercial": rec.offer_commercial,
                "territories": rec.offer_territories}
    return {"stems": ["vocals", "drums", "bass", "other"], "purposes": ["remix"], "commercial": False,
            "territories": []}


def _offer_choices():
    return {"stem_choices": [(s, present.STEM_LABELS[s]) for s in STEM_CHOICES],
            "purposes": [(p, present.PURPOSE_LABELS[p]) for p in PURPOSES]}


@label_page
def recording_detail(request, recording_id):
    rec = get_object_or_404(scope.visible_recordings(request.user), pk=recording_id)
    return render(request, "web/label/recording.html", _recording_context(request, rec))


@label_page
@require_POST
@writer
def recording_edit(request, recording_id):
    """Title, artist and ISRC as a new revision (the old values stay, the edit is ledgered)."""
    rec = get_object_or_404(scope.visible_recordings(request.user), pk=recording_id)
    data = form_data(request.POST)
    valid, errors = bind(RecordingEditSerializer, data)
    if valid:
        try:
            new = catalog_edits.do_edit_recording(rec.pk, request.user.organisation, request.user,
                                                  expected_revision=valid.pop("revision", None), **valid)
            messages.success(request, f"Saved as revision {new.revision}." if new.revision != rec.revision
                             else "Nothing changed.")
            return redirect("web:recording", rec.pk)
        except DomainError as exc:
            errors = error_dict(exc)
    return render(request, "web/label/recording.html", _recording_context(request, rec, data, errors), status=400)


@label_page
@require_POST
@writer
def recording_offer(request):
    """Open recordings for remix requests (one, or the whole catalog) with the usual terms, or
    close them."""
    data = form_data(request.POST, lists=("stems", "purposes"), codes=("territories",), booleans=("commercial",))
    one = data.pop("recording", "")
    data["open"] = data.pop("action", "open") != "close"
    rec = get_object_or_404(scope.visible_recordings(request.user), pk=_id_or_404(one)) if one else None
    valid, errors = bind(RemixOfferSerializer, data)
    if valid:
        try:
            n = catalog_edits.do_set_remix_offer(request.user.organisation, [rec.pk] if rec else None, **valid)
            what = f"“{rec.title}”" if rec else f"{n} recording{'s' if n != 1 else ''}"
            messages.success(request, f"{what} {'opened for remix requests' if valid['open'] else 'closed to requests'}.")
            return redirect("web:recording", rec.pk) if rec else redirect("web:catalog")
        except DomainError as exc:
            errors = error_dict(exc)
    if rec is not None:
        return render(request, "web/label/recording.html",
                      _recording_context(request, rec, offer_form=data, offer_errors=errors), status=400)
    return render(request, "web/label/catalog.html", {**_catalog_context(request), "offer": data,
                                                      "offer_errors": errors}, status=400)


@label_page
@require_POST
@writer
def recording_remove(request, recording_id):
    rec = get_object_or_404(scope.visible_recordings(request.user), pk=recording_id)
    try:
        do_remove_recording(request.user.organisation, rec.pk)
    except DomainError as exc:
        return refuse(request, exc, "web:recording", rec.pk)
    messages.success(request, f"“{rec.title}” was removed from the catalog and the identification index.")
    return redirect("web:catalog")


# --- grants ----------------------------------------------------------------------------------

def _grant_form_context(request, form, errors, grant=None):
    return {
        "form": form, "errors": errors, "grant": grant,
        "recordings": scope.visible_recordings(request.user).order_by("title"),
        "producers": Organisation.objects.filter(kind="producer").order_by("name"),
        "stem_choices": [(s, present.STEM_LABELS[s]) for s in STEM_CHOICES],
        "purposes": [(p, present.PURPOSE_LABELS[p]) for p in PURPOSES],
    }


def _grant_form_data(post, amend=False):
    data = form_data(post, lists=GRANT_LISTS, codes=GRANT_CODES,
                     booleans=("commercial",) if amend else ("commercial", "open_to_verified"), optional=GRANT_OPTIONAL)
    if amend:
        for key in ("licensee", "licensee_user", "status", "open_to_verified"):
            data.pop(key, None)
    return data


def _form_initial(grant=None, recording=None):
    if grant is None:
        now = timezone.now().replace(second=0, microsecond=0)
        return {"recordings": [str(recording)] if recording else [], "stems": ["vocals", "drums", "bass", "other"],
                "purposes": ["remix"], "territories": ["WW"], "valid_from": now,
                "valid_until": now + timedelta(days=365), "status": "active"}
    return {
        "recordings": [str(r.id) for r in grant.recordings.all()], "stems": grant.stems, "purposes": grant.purposes,
        "commercial": grant.commercial, "territories": grant.territories,
        "excluded_territories": grant.excluded_territories, "valid_from": grant.valid_from,
        "valid_until": grant.valid_until, "max_separations": grant.max_separations,
        "max_downloads": grant.max_downloads, "max_separations_per_user": grant.max_separations_per_user,
        "max_downloads_per_user": grant.max_downloads_per_user, "attribution": grant.attribution,
        "revenue_share_pct": grant.revenue_share_pct,
    }


@label_page
def licenses(request):
    grants = scope.visible_grants(request.user, current_only=True).order_by("status", "-created_at")
    return render(request, "web/label/licenses.html", {"grants": grants})


@label_page
@writer
def grant_create(request):
    if request.method != "POST":
        form = _form_initial(recording=request.GET.get("recording"))
        return render(request, "web/label/grant_form.html", _grant_form_context(request, form, {}))
    data = _grant_form_data(request.POST)
    valid, errors = bind(LicenseGrantSerializer, data)
    if valid:
        valid.pop("licensee", None)
        if data.get("licensee"):
            valid["licensee_org"] = Organisation.objects.filter(slug=data["licensee"], kind="producer").first()
            if valid["licensee_org"] is None:
                errors = {"licensee": "no such producer organisation"}
        if not errors:
            recordings = valid.pop("recordings")
            try:
                grant = grants.do_create_grant(request.user.organisation, recordings, **valid)
                messages.success(request, f"License granted (version {grant.version}, {grant.status}).")
                return redirect("web:grant", grant.id)
            except DomainError as exc:
                errors = error_dict(exc)
    return render(request, "web/label/grant_form.html", _grant_form_context(request, data, errors), status=400)


@label_page
def grant_detail(request, grant_id):
    grant = get_object_or_404(scope.visible_grants(request.user), pk=grant_id)
    versions = LicenseGrant.objects.filter(family=grant.family).order_by("-version")
    current = versions.exclude(status="superseded").first() or grant
    events = UsageEvent.objects.filter(grant__family=grant.family)
    return render(request, "web/label/grant.html", {
        "grant": grant, "current": current, "versions": versions, "terms_digest": grant.terms().digest(),
        "chart": _chart(events, f"Daily usage of this license, last {USAGE_DAYS} days"),
        "rows": reports.usage_rows(list(versions)),
    })


@label_page
@writer
def grant_amend(request, grant_id):
    grant = get_object_or_404(scope.visible_grants(request.user), pk=grant_id)
    if request.method != "POST":
        return render(request, "web/label/grant_form.html",
                      _grant_form_context(request, _form_initial(grant), {}, grant))
    data = _grant_form_data(request.POST, amend=True)
    valid, errors = bind(LicenseAmendSerializer, data, partial=True)
    if valid:
        try:
            new = grants.do_amend_grant(grant.pk, request.user.organisation, **valid)
            messages.success(request, f"License amended: version {new.version} is now in force.")
            return redirect("web:grant", new.id)
        except DomainError as exc:
            errors = error_dict(exc)
    return render(request, "web/label/grant_form.html", _grant_form_context(request, data, errors, grant), status=400)


GRANT_ACTIONS = {
    "suspend": (grants.do_suspend_grant, "License suspended."),
    "revoke": (grants.do_revoke_grant, "License revoked."),
    "reinstate": (grants.do_reinstate_grant, "License reinstated."),
    "activate": (grants.do_activate_grant, "License activated."),
}


@label_page
@writer
def grant_action(request, grant_id, action):
    """GET: a confirmation saying what the action will stop; POST: do it."""
    grant = get_object_or_404(scope.visible_grants(request.user), pk=grant_id)
    if action not in GRANT_ACTIONS:
        return redirect("web:grant", grant.pk)
    if request.method != "POST":
        summary = present.grant_stop_summary(grant, action) if action in ("suspend", "revoke") else None
        return render(request, "web/label/grant_confirm.html", {"grant": grant, "action": action, "summary": summary})
    fn, done = GRANT_ACTIONS[action]
    try:
        fn(grant.pk, request.user.organisation)
    except DomainError as exc:
        return refuse(request, exc, "web:grant", grant.pk)
    messages.success(request, done)
    return redirect("web:grant", grant.pk)


# --- requests --------------------------------------------------------------------------------

@label_page
def requests_inbox(request):
    reqs = scope.visible_license_requests(request.user).select_related("grant", "job")
    status = request.GET.get("status", "pending")
    if status != "all":
        reqs = reqs.filter(status=status)
    return render(request, "web/label/requests.html", {"requests": reqs[:100], "status": status,
                                                       "purposes": present.PURPOSE_LABELS})


def _approve_initial(req):
    return {"stems": req.stems, "purposes": [req.purpose], "commercial": req.commercial, "territories": [req.territory],
            "valid_until": timezone.now().replace(second=0, microsecond=0) + timedelta(days=365)}


@label_page
@writer
def request_decide(request, request_id):
    req = get_object_or_404(scope.visible_license_requests(request.user), pk=request_id)
    ctx = {"req": req, "stem_choices": [(s, present.STEM_LABELS[s]) for s in STEM_CHOICES],
           "purposes": [(p, present.PURPOSE_LABELS[p]) for p in PURPOSES], "errors": {}, "deny_errors": {}}
    if request.method != "POST":
        return render(request, "web/label/request.html", {**ctx, "form": _approve_initial(req)})
    try:
        if request.POST.get("decision") == "deny":
            valid, errors = bind(LicenseDenySerializer, {"reason": request.POST.get("reason", "").strip()})
            if not valid:
                return render(request, "web/label/request.html",
                              {**ctx, "form": _approve_initial(req), "deny_errors": errors}, status=400)
            license_requests.do_deny_license_request(req.pk, request.user.organisation, valid["reason"])
            messages.success(request, f"Request from {req.requester_org.name} denied; they see your reason.")
            return redirect("web:requests")
        data = form_data(request.POST, lists=("stems", "purposes"), codes=("territories",), booleans=("commercial",),
                         optional=("valid_until", "max_separations", "max_downloads", "max_separations_per_user",
                                   "max_downloads_per_user", "attribution", "revenue_share_pct"))
        data.pop("decision", None)
        data.pop("reason", None)
        valid, errors = bind(LicenseApproveSerializer, data)
        if not valid:
            return render(request, "web/label/request.html", {**ctx, "form": data, "errors": errors}, status=400)
        req = license_requests.do_approve_license_request(req.pk, request.user.organisation, **valid)
        messages.success(request, f"Approved: {req.requester_org.name} now holds license version {req.grant.version}.")
        return redirect("web:grant", req.grant_id)
    except DomainError as exc:
        return render(request, "web/label/request.html",
                      {**ctx, "form": _approve_initial(req), "errors": error_dict(exc)}, status=http_status(exc))


# --- usage -----------------------------------------------------------------------------------

@label_page
def usage(request):
    grants = scope.visible_grants(request.user)
    events = UsageEvent.objects.filter(grant__in=grants)
    per_recording = (events.values("recording_id", "recording__title", "recording__isrc")
                     .annotate(separations=Count("act", filter=Q(kind="separation"), distinct=True),
                               downloads=Count("act", filter=Q(kind="download"), distinct=True),
                               exports=Count("act", filter=Q(kind="export"), distinct=True))
                     .order_by("recording__title"))
    return render(request, "web/label/usage.html", {
        "chart": _chart(events, f"Daily usage of all your licenses, last {USAGE_DAYS} days"),
        "per_recording": per_recording, "per_grant": reports.usage_rows(grants),
    })


@label_page
def usage_csv(request):
    """Usage events per day, license version, recording and kind; `?grant=` or `?recording=`
    narrows it to one license (all its versions) or one recording."""
    events = UsageEvent.objects.filter(grant__in=scope.visible_grants(request.user))
    name = "usage"
    if (grant_id := request.GET.get("grant")):
        grant = get_object_or_404(scope.visible_grants(request.user), pk=_id_or_404(grant_id))
        events, name = events.filter(grant__family=grant.family), f"license-{str(grant.family)[:8]}-usage"
    if (rec_id := request.GET.get("recording")):
        rec = get_object_or_404(scope.visible_recordings(request.user), pk=_id_or_404(rec_id))
        events, name = events.filter(recording=rec), f"recording-{rec.isrc or str(rec.id)[:8]}-usage"
    return csv_response(reports.usage_event_rows(events), f"{name}.csv", fieldnames=USAGE_CSV_FIELDS)

