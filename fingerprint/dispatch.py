"""Sending identification messages (actors are imported lazily to keep models import-light)."""


def send_identify_upload(upload_id) -> None:
    from .actors import identify_upload

    identify_upload.send(str(upload_id))
