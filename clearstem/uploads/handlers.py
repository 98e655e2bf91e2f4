"""Upload handler that spools to disk and hashes while the body streams in.

It refuses a body over CLEARSTEM_MAX_UPLOAD_BYTES as soon as it is known (declared length or
bytes received), so an oversized upload never fills the disk.
"""
from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from sharedcore.errors import DomainError

MULTIPART_SLACK = 64 * 1024


def too_large() -> DomainError:
    limit = settings.CLEARSTEM_MAX_UPLOAD_BYTES
    return DomainError("too_large", f"the upload exceeds the {limit} byte limit")


class HashingUploadHandler(TemporaryFileUploadHandler):
    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > settings.CLEARSTEM_MAX_UPLOAD_BYTES + MULTIPART_SLACK:
            raise too_large()
        return None

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self._sha256 = hashlib.sha256()
        self._received = 0

    def receive_data_chunk(self, raw_data, start):
        self._received += len(raw_data)
        if self._received > settings.CLEARSTEM_MAX_UPLOAD_BYTES:
            raise too_large()
        self._sha256.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        uploaded = super().file_complete(file_size)
        uploaded.sha256 = self._sha256.hexdigest()
        return uploaded
