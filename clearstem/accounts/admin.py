from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from clearstem.readonly_admin import ReadOnlyModelAdmin

from .models import Invitation, Organisation, User


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "kind", "verified", "created_at")
    list_filter = ("kind", "verified")
    search_fields = ("slug", "name")


@admin.register(User)
class ClearStemUserAdmin(UserAdmin):
    list_display = ("username", "organisation", "role", "is_active", "is_staff")
    list_filter = ("organisation__kind", "role", "is_active")
    fieldsets = UserAdmin.fieldsets + (("Organisation", {"fields": ("organisation", "role")}),)


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyModelAdmin):
    """Shown, never changed here: invitations are made, accepted and revoked by their services
    (which send the e-mail and keep one pending invitation per organisation and address)."""

    list_display = ("email", "organisation", "role", "status", "invited_by", "created_at", "expires_at")
    list_filter = ("role", "organisation")
    search_fields = ("email", "organisation__slug")
    exclude = ("token_hash",)
