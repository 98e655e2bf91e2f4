"""Webhook signatures, Stripe-style: `ClearStem-Signature: t=<unix>,v1=<hex>` where hex is
HMAC-SHA256(secret, f"{t}.{body}"). Signing the timestamp with the body lets a receiver refuse
replays of an old delivery. Plain Python (no Django): the README's snippet is this code."""
from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "ClearStem-Signature"
DEFAULT_TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def header_value(secret: str, body: bytes, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(secret, t, body)}"


def verify(secret: str, header: str, body: bytes, tolerance_s: int = DEFAULT_TOLERANCE_S,
           now: float | None = None) -> bool:
    """True when one v1 signature in `header` matches and t is within `tolerance_s` of now."""
    try:
        parts = [p.split("=", 1) for p in header.split(",")]
        t = int(next(v for k, v in parts if k.strip() == "t"))
        sigs = [v.strip() for k, v in parts if k.strip() == "v1"]
    except (ValueError, StopIteration):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    expected = signature(secret, t, body)
    return any(hmac.compare_digest(expected, s) for s in sigs)
