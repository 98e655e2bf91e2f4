from django.contrib import admin

from clearstem.readonly_admin import ReadOnlyModelAdmin

from .models import Upload


@admin.register(Upload)
class UploadAdmin(ReadOnlyModelAdmin):
    list_display = ("original_name", "organisation", "duration_s", "identification_status", "created_at")
    list_filter = ("identification_status", "container")
    search_fields = ("original_name", "sha256")
    readonly_fields = [f.name for f in Upload._meta.fields if f.name != "fingerprint"]
    exclude = ("fingerprint",)
