from django.contrib import admin

from clearstem.readonly_admin import ReadOnlyModelAdmin as ReadOnlyAdmin

from .models import LedgerEntry, LedgerVerification, ProvenanceRecord, TreeHead


@admin.register(ProvenanceRecord)
class ProvenanceRecordAdmin(ReadOnlyAdmin):
    list_display = ("stem", "schema", "key_id", "created_at")
    search_fields = ("payload_sha256", "key_id")
    readonly_fields = [f.name for f in ProvenanceRecord._meta.fields]


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("index", "kind", "subject", "created_at")
    list_filter = ("kind",)
    search_fields = ("subject",)
    exclude = ("body", "leaf_hash")
    readonly_fields = ("index", "kind", "subject", "created_at", "leaf_hex", "body_text")

    @admin.display(description="leaf hash")
    def leaf_hex(self, obj):
        return bytes(obj.leaf_hash).hex()

    @admin.display(description="entry")
    def body_text(self, obj):
        return bytes(obj.body).decode()


@admin.register(TreeHead)
class TreeHeadAdmin(ReadOnlyAdmin):
    list_display = ("size", "key_id", "created_at")
    exclude = ("root_hash",)
    readonly_fields = ("size", "timestamp", "key_id", "signature", "checkpoint", "created_at")


@admin.register(LedgerVerification)
class LedgerVerificationAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "ok", "size", "first_bad_index", "requested_by")
    readonly_fields = [f.name for f in LedgerVerification._meta.fields]

