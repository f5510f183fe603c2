"""The log and the audit trail: read, never changed."""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from registry.admin.actions import ReadOnlyAdmin
from registry.admin.site import admin_site
from registry.models import AuditEvent, LogEntry


@admin.register(LogEntry, site=admin_site)
class LogEntryAdmin(ReadOnlyAdmin):
    list_display = ["sequence", "kind", "created_at"]
    list_filter = ["kind"]
    show_full_result_count = False
    fields = ["sequence", "kind", "created_at", "canonical_json", "leaf_hash_hex"]
    readonly_fields = fields

    @admin.display(description="canonical JSON (RFC 8785)")
    def canonical_json(self, entry: LogEntry) -> str:
        return format_html("<code>{}</code>", bytes(entry.body).decode())

    @admin.display(description="leaf hash (SHA-256)")
    def leaf_hash_hex(self, entry: LogEntry) -> str:
        return bytes(entry.leaf_hash).hex()


@admin.register(AuditEvent, site=admin_site)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor", "action", "target_type", "target_id", "log_sequence"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor", "target_id"]
    show_full_result_count = False
