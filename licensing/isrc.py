"""ISRC validation and normalisation (IFPI: CC-XXX-YY-NNNNN, stored without hyphens)."""
import re

_ISRC = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{2}[0-9]{5}$")


def normalise_isrc(value: str | None) -> str | None:
    """Return the 12-character ISRC, None for empty input; raise ValueError when invalid."""
    if value is None or not value.strip():
        return None
    cleaned = value.strip().upper().replace("-", "").replace(" ", "")
    if cleaned.startswith("ISRC"):
        cleaned = cleaned[4:]
    if not _ISRC.match(cleaned):
        raise ValueError(f"{value!r} is not a valid ISRC (2 letters, 3 alphanumerics, 2 digits, 5 digits)")
    return cleaned
