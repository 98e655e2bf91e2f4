"""The events an organisation can be told about, and to whom each goes."""
from __future__ import annotations

#: type → what people read (UI, e-mail subjects). A webhook's filter and a user's e-mail
#: opt-outs name these.
EVENT_TYPES: dict[str, str] = {
    "job.finished": "Job finished",
    "job.failed": "Job failed",
    "job.denied": "Job denied",
    "license_request.created": "License request received",
    "license_request.answered": "License request answered",
    "license.granted": "License granted",
    "license.revoked": "License revoked",
    "license.suspended": "License suspended",
}
#: A test delivery (never e-mailed, sent whatever the webhook's filter says).
TEST_EVENT = "webhook.test"
ALL_TYPES = [*EVENT_TYPES, TEST_EVENT]
#: An e-mail opt-out of every type.
ALL = "all"

#: Which organisations receive each type (the e-mail preferences page offers only these).
FOR_PRODUCERS = ["job.finished", "job.failed", "job.denied", "license_request.answered", "license.granted",
                 "license.revoked", "license.suspended"]
FOR_LABELS = ["license_request.created"]


def types_for(org_kind: str | None) -> list[str]:
    if org_kind == "producer":
        return FOR_PRODUCERS
    if org_kind == "label":
        return FOR_LABELS
    return []
