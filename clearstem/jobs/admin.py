from django.contrib import admin

from clearstem.readonly_admin import ReadOnlyInline, ReadOnlyModelAdmin

from .models import Job, JobReview, Stem


class StemInline(ReadOnlyInline):
    model = Stem
    readonly_fields = ("name", "sha256", "size", "format", "sample_rate", "bits_per_sample", "duration_s")


class JobReviewInline(ReadOnlyInline):
    model = JobReview
    fk_name = "job"
    readonly_fields = ("recording", "rights_holder", "outcome", "decided_by", "decided_at", "note")


@admin.register(Job)
class JobAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "organisation", "state", "progress", "error_code", "attempts", "created_at")
    list_filter = ("state", "model", "purpose")
    search_fields = ("id", "upload__sha256")
    readonly_fields = [f.name for f in Job._meta.fields]
    inlines = [StemInline, JobReviewInline]


@admin.register(Stem)
class StemAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "job", "name", "sha256", "created_at")
    search_fields = ("id", "sha256")
    readonly_fields = [f.name for f in Stem._meta.fields]


@admin.register(JobReview)
class JobReviewAdmin(ReadOnlyModelAdmin):
    list_display = ("id", "job", "recording", "rights_holder", "outcome", "decided_by", "decided_at")
    list_filter = ("outcome",)
    search_fields = ("id", "job__id", "recording__isrc")
    readonly_fields = [f.name for f in JobReview._meta.fields]
