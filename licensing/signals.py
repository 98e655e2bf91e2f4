"""Licensing's domain events. A license that stops (revoked, suspended) must also stop the
jobs cleared under it, but jobs belong to the platform, which licensing never imports: the
platform listens here instead (`clearstem.jobs.apps`)."""
from django.dispatch import Signal

#: Sent after the commit that revoked or suspended a license.
#: Arguments: grant (the current version), code ("revoked" | "suspended"), message, job_ids
#: (jobs cleared under any version of the license).
license_stopped = Signal()
