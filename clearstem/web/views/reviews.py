"""Review pages for rights holders and platform staff: the suspected recordings of jobs held
for review, the evidence, and the Release / Refuse forms (the same serializers and services
as the API's `/api/v1/reviews/`)."""
from __future__ import annotations

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render

from clearstem.accounts import scoping as scope
from clearstem.api.errors import http_status
from clearstem.api.serializers import ReviewRefuseSerializer, ReviewReleaseSerializer
from clearstem.jobs.models import JobReview
from clearstem.jobs.reviews import can_decide_review, do_refuse_review, do_release_review
from sharedcore.errors import DomainError

from .. import present
from ..forms import bind, error_dict
from .common import persona

reviewer_page = persona("label", "platform")
FILTERS = ("pending", "released", "refused", "all")


@reviewer_page
def reviews_inbox(request):
    outcome = request.GET.get("outcome", "pending")
    outcome = outcome if outcome in FILTERS else "pending"
    reviews = scope.visible_reviews(request.user)
    if outcome == "pending":
        reviews = reviews.awaiting()
    elif outcome != "all":
        reviews = reviews.filter(outcome=outcome)
    rows = [{"review": r, "evidence": present.describe_evidence(r.evidence)} for r in reviews[:100]]
    return render(request, "web/reviews/inbox.html", {"rows": rows, "outcome": outcome})


@reviewer_page
def review_decide(request, review_id):
    """GET: the evidence and, for those who may decide, the two forms; POST: the verdict."""
    review = get_object_or_404(scope.visible_reviews(request.user), pk=review_id)
    ctx = {"review": review, "evidence": present.describe_evidence(review.evidence),
           "can_decide": can_decide_review(request.user, review) and review.outcome == JobReview.Outcome.PENDING
           and review.job.state == "review",
           "others": review.job.reviews.exclude(pk=review.pk).select_related("recording", "rights_holder"),
           "errors": {}, "refuse_errors": {}, "form": {}}
    if request.method != "POST":
        return render(request, "web/reviews/review.html", ctx)
    if not request.user.can_write:
        messages.error(request, "Your role is read-only: ask an admin of your organisation to do this.")
        return redirect("web:review", review.pk)
    decision = request.POST.get("decision")
    try:
        if decision == "refuse":
            valid, errors = bind(ReviewRefuseSerializer, {"reason": request.POST.get("reason", "").strip()})
            if not valid:
                return render(request, "web/reviews/review.html", {**ctx, "refuse_errors": errors,
                                                                   "form": request.POST}, status=400)
            do_refuse_review(review.pk, request.user, valid["reason"])
            messages.success(request, f"Refused: the job of {review.job.organisation.name} is denied with your reason.")
        elif decision == "release":
            valid, errors = bind(ReviewReleaseSerializer, {"note": request.POST.get("note", "").strip()})
            if not valid:
                return render(request, "web/reviews/review.html", {**ctx, "errors": errors, "form": request.POST},
                              status=400)
            do_release_review(review.pk, request.user, valid["note"])
            messages.success(request, f"Released: “{review.recording.title}” was judged not present in the upload.")
        else:
            return redirect("web:review", review.pk)
    except DomainError as exc:
        key = "refuse_errors" if decision == "refuse" else "errors"
        return render(request, "web/reviews/review.html", {**ctx, key: error_dict(exc), "form": request.POST},
                      status=http_status(exc))
    return redirect("web:reviews")
