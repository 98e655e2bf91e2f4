from django.contrib import admin

from .models import ReferenceFingerprint


@admin.register(ReferenceFingerprint)
class ReferenceFingerprintAdmin(admin.ModelAdmin):
    list_display = ("recording", "item_count", "algorithm", "created_at")
    exclude = ("items",)
    readonly_fields = ("recording", "item_count", "algorithm", "created_at")
