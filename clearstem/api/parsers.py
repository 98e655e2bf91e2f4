"""The API's body parsers: DRF's, refusing control characters in every text value (see
`clearstem.api.inputs`) before any serializer or lookup sees them. Settings make them the
default; views that narrow their parsers pick from these."""
from __future__ import annotations

from rest_framework import parsers
from rest_framework.exceptions import ValidationError

from .inputs import find_control_character, refusal


def _refuse_control_characters(data):
    found = find_control_character(data)
    if found is not None:
        field, ch = found
        raise ValidationError({field: [refusal(field, ch)]}, code="invalid")


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _refuse_control_characters(data)
        return data


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        _refuse_control_characters(data)
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parsed = super().parse(stream, media_type, parser_context)
        _refuse_control_characters(parsed.data)  # (Django already drops unprintable file-name characters)
        return parsed
