"""What text the API accepts: no control characters, anywhere.

A NUL byte cannot be stored in PostgreSQL text (the database refuses it mid-query), and other
control characters in a slug, a title or an e-mail are never meant. One rule, applied where text
enters the API: every string value of a JSON, form or multipart body (the parsers below, which
every API view uses) and every query-string key and value
(`clearstem.api.middleware`). Free-text fields (FREE_TEXT_FIELDS) may hold tabs and line
breaks; nothing else may. A refusal is a 400 `invalid` naming the field.

This module imports neither the project nor DRF's serializers, so the middleware can use it.
"""
from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

#: Fields whose text is prose written by people: tabs and line breaks are kept there.
FREE_TEXT_FIELDS = frozenset({"message", "response", "reason", "attribution", "statement", "note"})

# C0 and C1 control characters, DEL, and lone surrogates (JSON can spell them, no encoding can
# store them); the free-text pattern spares \t \n \r.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
_CONTROL_IN_PROSE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def control_character(value: str, free_text: bool = False) -> str | None:
    """The first character of `value` that the API refuses, or None."""
    m = (_CONTROL_IN_PROSE if free_text else _CONTROL).search(value)
    return m.group() if m else None


def _strings(data, field: str) -> Iterator[tuple[str, str, bool]]:
    """(field path, string, is free text) for every string in parsed input, keys included."""
    if isinstance(data, str):
        yield field, data, field.rsplit(".", 1)[-1] in FREE_TEXT_FIELDS
    elif isinstance(data, Mapping):
        items = data.lists() if hasattr(data, "lists") else data.items()  # QueryDict: every value
        for key, value in items:
            key = str(key)
            name = f"{field}.{key}" if field else key
            yield name, key, False
            yield from _strings(value, name)
    elif isinstance(data, list | tuple):
        for item in data:
            yield from _strings(item, field)


def find_control_character(data, field: str = "") -> tuple[str, str] | None:
    """(field, character) for the first refused character in parsed input, or None."""
    for name, text, free_text in _strings(data, field):
        if (ch := control_character(text, free_text)) is not None:
            return name or "body", ch
    return None


def refusal(field: str, ch: str) -> str:
    return f"control character U+{ord(ch):04X} is not allowed in {field!r}"
