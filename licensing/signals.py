"""Licensing's domain events. A license that stops (revoked, suspended) must also stop the
jobs cleared under it, but jobs belong to the platform, which licensing never imports: the
platform listens here instead (`clearstem.jobs.apps`)."""
from django.dispatch import Signal

#: Sent after the commit that revoked or suspended a license.
#: Arguments: grant (the current version), code ("revoked" | "suspended"), message, job_ids
#: (jobs cleared under any version of the license).
license_stopped = Signal()

# Sent inside the transaction that made the change (receivers that act outside the database
# wait for its commit with `transaction.on_commit`); the platform's notifications listen.
#: Arguments: requests (the LicenseRequests one call filed, one per rights holder).
license_request_created = Signal()
#: Arguments: request (approved, with its grant, or denied, with the reason in `response`).
license_request_answered = Signal()
#: Arguments: grant (a license that became active: created active, or a draft activated).
license_granted = Signal()
