"""Listening on the job page: the producer's own upload as a preview (the stems' previews are
judged like downloads in `producer.stem_listen`; an upload is the producer's own audio)."""
from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse
from django.shortcuts import get_object_or_404

from clearstem.accounts import scoping as scope
from clearstem.jobs.listening import upload_preview

from .common import persona


@persona("producer")
def upload_listen(request, upload_id):
    """A 128 kb/s MP3 of the upload for the page's player (made once, then served as stored)."""
    up = get_object_or_404(scope.visible_uploads(request.user), pk=upload_id)
    return FileResponse(default_storage.open(upload_preview(up), "rb"), content_type="audio/mpeg")
