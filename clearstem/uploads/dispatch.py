"""Upload messages: identify an upload as soon as it is stored (`clearstem.uploads.actors`)."""
from __future__ import annotations

from clearstem.messaging import send

IDENTIFY_UPLOAD = "identify_upload"


def send_identify_upload(upload_id) -> None:
    send("default", IDENTIFY_UPLOAD, str(upload_id))
