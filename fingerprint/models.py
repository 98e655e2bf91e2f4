from __future__ import annotations

import numpy as np
from django.db import models


class ReferenceFingerprint(models.Model):
    """The raw Chromaprint items of a catalog recording's reference audio (uint32 LE bytes)."""

    recording = models.OneToOneField("licensing.Recording", on_delete=models.CASCADE, related_name="fingerprint")
    items = models.BinaryField()
    item_count = models.PositiveIntegerField()
    algorithm = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    def as_array(self) -> np.ndarray:
        return np.frombuffer(bytes(self.items), dtype="<u4")
