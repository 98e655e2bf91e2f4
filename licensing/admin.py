from django.contrib import admin

from .models import LicenseGrant, Recording, UsageEvent


@admin.register(Recording)
class RecordingAdmin(admin.ModelAdmin):
    list_display = ("title", "artist", "isrc", "rights_holder", "duration_s")
    search_fields = ("title", "artist", "isrc")
    list_filter = ("rights_holder",)


@admin.register(LicenseGrant)
class LicenseGrantAdmin(admin.ModelAdmin):
    list_display = ("id", "licensor", "licensee_org", "status", "version", "valid_until")
    list_filter = ("status", "commercial")


@admin.register(UsageEvent)
class UsageEventAdmin(admin.ModelAdmin):
    list_display = ("grant", "kind", "recording", "user", "created_at")
    list_filter = ("kind",)
    readonly_fields = [f.name for f in UsageEvent._meta.fields]
