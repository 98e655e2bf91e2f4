from django.contrib import admin

from .models import ProvenanceRecord


@admin.register(ProvenanceRecord)
class ProvenanceRecordAdmin(admin.ModelAdmin):
    list_display = ("stem", "schema", "key_id", "created_at")
    search_fields = ("payload_sha256", "key_id")
    readonly_fields = [f.name for f in ProvenanceRecord._meta.fields]

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
