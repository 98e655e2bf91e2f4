from django.contrib import admin

from clearstem.readonly_admin import ReadOnlyModelAdmin

from .models import LicenseGrant, LicenseRequest, Recording, RecordingRevision, UsageEvent


@admin.register(Recording)
class RecordingAdmin(ReadOnlyModelAdmin):
    list_display = ("title", "artist", "isrc", "rights_holder", "duration_s")
    search_fields = ("title", "artist", "isrc")
    list_filter = ("rights_holder",)


@admin.register(LicenseGrant)
class LicenseGrantAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "family", "version", "licensor", "licensee_org", "status", "valid_until")
    list_filter = ("status", "commercial")
    search_fields = ("id", "family")


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyModelAdmin):
    list_display = ("grant", "kind", "recording", "user", "created_at")
    list_filter = ("kind",)
    readonly_fields = [f.name for f in UsageEvent._meta.fields]


@admin.register(LicenseRequest)
class LicenseRequestAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "requester_org", "rights_holder", "purpose", "status", "created_at")
    list_filter = ("status", "purpose")


@admin.register(RecordingRevision)
class RecordingRevisionAdmin(ReadOnlyModelAdmin):
    list_display = ("recording", "revision", "title", "artist", "isrc", "replaced_by", "replaced_at")
    search_fields = ("title", "artist", "isrc", "recording__title")
