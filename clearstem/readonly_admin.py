"""A Django admin that shows and never changes: rights and provenance objects change only
through their services, which check the rules and write the ledger in the same transaction.
No add, change or delete for anyone, superusers included."""
from __future__ import annotations

from django.contrib import admin


class ReadOnly:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyModelAdmin(ReadOnly, admin.ModelAdmin):
    def get_actions(self, request):
        return {}  # "delete selected" and friends would bypass the services too


class ReadOnlyInline(ReadOnly, admin.TabularInline):
    extra = 0
