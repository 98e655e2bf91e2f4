from django.contrib import admin

from clearstem.readonly_admin import ReadOnlyModelAdmin

from .models import ReferenceFingerprint


@admin.register(ReferenceFingerprint)
class ReferenceFingerprintAdmin(ReadOnlyModelAdmin):
    list_display = ("recording", "item_count", "algorithm", "created_at")
    exclude = ("items",)
    readonly_fields = ("recording", "item_count", "algorithm", "created_at")
