"""The navigation each persona sees (labels also see how many requests and reviews wait for
them, auditors how many reviews)."""
from __future__ import annotations

from django.urls import reverse

from clearstem.accounts.scoping import visible_reviews
from licensing.models import LicenseRequest


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    if user.is_producer:
        items = [("Studio", "web:studio"), ("Catalog", "web:studio-catalog"), ("Licenses", "web:studio-licenses")]
    elif user.is_label:
        pending = LicenseRequest.objects.filter(rights_holder=user.organisation, status="pending").count()
        reviews = visible_reviews(user).awaiting().count()
        items = [("Catalog", "web:catalog"), ("Licenses", "web:label-licenses"),
                 ("Requests", "web:requests", pending), ("Reviews", "web:reviews", reviews), ("Usage", "web:usage")]
    elif user.is_platform:
        reviews = visible_reviews(user).awaiting().count()
        items = [("Find a stem", "web:audit"), ("Ledger", "web:ledger"), ("Jobs", "web:job-monitor"),
                 ("Reviews", "web:reviews", reviews)]
    else:
        items = []
    nav = [{"label": label, "url": reverse(name), "badge": badge[0] if badge else None, "active": False}
           for label, name, *badge in items]
    current = [n for n in nav if request.path.startswith(n["url"])]
    if current:  # the longest matching prefix is the current page
        max(current, key=lambda n: len(n["url"]))["active"] = True
    return {"nav": nav}
