from __future__ import annotations

import numpy as np
from django.db import models


class ReferenceFingerprint(models.Model):
    """A catalog recording's reference prints: the raw Chromaprint items (uint32 LE bytes), the
    same at the reference speeds (so a query need not be fingerprinted at every speed of the
    grid) and the spectral-peak landmark print. The identification indexes are caches of
    these rows."""

    recording = models.OneToOneField("licensing.Recording", on_delete=models.CASCADE, related_name="fingerprint")
    items = models.BinaryField()
    item_count = models.PositiveIntegerField()
    algorithm = models.PositiveSmallIntegerField(default=1)
    landmarks = models.BinaryField(
        default=b"", blank=True,
        help_text="the landmark print (fingerprint.landmarks.pack_print, kind reference); empty until computed",
    )
    speed_items = models.BinaryField(
        default=b"", blank=True,
        help_text="the Chromaprint items at fingerprint.scan.REFERENCE_SPEEDS (fingerprint.scan.pack_variants, "
                  "labelled by speed); empty until computed",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def as_array(self) -> np.ndarray:
        return np.frombuffer(bytes(self.items), dtype="<u4")
