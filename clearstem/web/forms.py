"""Forms validate exactly like the API: the same DRF serializers, fed from HTML form data,
with their errors kept per field so templates can show each one next to its input."""
from __future__ import annotations

from django.http import QueryDict

from sharedcore.errors import DomainError

#: Service error codes that belong to one form field (the rest are shown above the form).
FIELD_OF_CODE = {
    "territory_not_held": "territories",
    "not_rights_holder": "recordings",
    "unknown_licensee": "licensee",
    "invalid_stems": "stems",
    "invalid_purpose": "purpose",
    "model_unavailable": "model",
    "model_not_licensed_for_commercial_use": "commercial",
    "invalid_attestation": "attestation",
    "attestation_required": "attestation",
    "reason_required": "reason",
    "isrc_taken": "isrc",
    "invalid_isrc": "isrc",
}


def split_codes(raw: str) -> list[str]:
    """'GB, fr  DE' → ['GB', 'FR', 'DE'] (commas or spaces between ISO country codes)."""
    return [p.strip().upper() for p in raw.replace(",", " ").split() if p.strip()]


def form_data(post: QueryDict, *, lists=(), codes=(), booleans=(), optional=()) -> dict:
    """Turn HTML form fields into the shape the API's serializers take.

    `lists`: multi-value fields (checkboxes, multi-selects); `codes`: free-text lists of country
    codes; `booleans`: checkboxes (absent = False); `optional`: blank means "not given".
    Everything else is passed through as its single value.
    """
    data: dict = {}
    for key in post:
        if key == "csrfmiddlewaretoken":
            continue
        if key in lists:
            data[key] = [v for v in post.getlist(key) if v]
        elif key in codes:
            data[key] = split_codes(post.get(key, ""))
        elif key in booleans:
            continue
        else:
            data[key] = post.get(key, "").strip()
    for key in booleans:
        data[key] = post.get(key) in ("on", "true", "1", "yes")
    for key in lists:
        data.setdefault(key, [])
    for key in (*optional, *codes):
        if key in data and data[key] in ("", []):
            del data[key]
    return data


def flatten_errors(detail, prefix: str = "") -> dict[str, str]:
    """A serializer's nested errors as {field: first message}."""
    out: dict[str, str] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # a list field's n-th element: the error is the list field's
                name = prefix or "__all__"
            else:
                name = "__all__" if key == "non_field_errors" else (f"{prefix}.{key}" if prefix else key)
            for k, v in flatten_errors(value, name).items():
                out.setdefault(k, v)
    elif isinstance(detail, list):
        for item in detail:
            for k, v in flatten_errors(item, prefix).items():
                out.setdefault(k, v)
    else:
        out[prefix or "__all__"] = str(detail)
    return out


def bind(serializer_cls, data: dict, **kwargs):
    """(validated data, {}) or (None, {field: message})."""
    ser = serializer_cls(data=data, **kwargs)
    if ser.is_valid():
        return dict(ser.validated_data), {}
    return None, flatten_errors(ser.errors)


def error_dict(exc: DomainError) -> dict[str, str]:
    """A service's refusal, placed on the field it is about when there is one."""
    return {FIELD_OF_CODE.get(exc.code, "__all__"): str(exc.detail)}
