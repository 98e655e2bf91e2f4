from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from .models import Organisation, User


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
