"""The log and the audit trail: read, never changed."""

from __future__ import annotations

import uuid

from django.contrib import admin
from django.db import connection
from django.db.models import BooleanField
from django.db.models.expressions import RawSQL
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from directory.models import VaultLogRef
from registry import numbers
from registry.admin.actions import ReadOnlyAdmin
from registry.admin.site import admin_site
from registry.models import AuditEvent, LogEntry


@admin.register(LogEntry, site=admin_site)
class LogEntryAdmin(ReadOnlyAdmin):
    list_display = ["sequence", "kind", "created_at"]
    list_filter = ["kind"]
    search_fields = ["sequence"]  # see get_search_results: by subject
    search_help_text = _("A vault number (any form), a provider's id, or a log index.")
    show_full_result_count = False
    fields = ["sequence", "kind", "created_at", "canonical_json", "leaf_hash_hex"]
    readonly_fields = fields

    def get_search_results(self, request, queryset, search_term):
        """Entries by subject: a vault number through ``VaultLogRef`` (one indexed query), a
        provider's id by the bytes of the entry bodies that name it, or a log index."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.isdigit():
            return queryset.filter(sequence=int(term)), False
        try:
            provider_id = uuid.UUID(term)
        except ValueError:
            number = numbers.compact(term)
            refs = VaultLogRef.objects.filter(number=number).values("sequence")
            return queryset.filter(sequence__in=refs), False
        needle = f'"provider":"{provider_id}"'.encode()
        function = (
            "position(%s in body)" if connection.vendor == "postgresql" else "instr(body, %s)"
        )
        found = RawSQL(f"{function} > 0", [needle], output_field=BooleanField())  # noqa: S611
        return queryset.alias(names=found).filter(names=True), False

    @admin.display(description=_("canonical JSON (RFC 8785)"))
    def canonical_json(self, entry: LogEntry) -> str:
        return format_html("<code>{}</code>", bytes(entry.body).decode())

    @admin.display(description=_("leaf hash (SHA-256)"))
    def leaf_hash_hex(self, entry: LogEntry) -> str:
        return bytes(entry.leaf_hash).hex()


@admin.register(AuditEvent, site=admin_site)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor", "action", "target_type", "target_id", "log_sequence"]
    list_filter = ["action", "target_type"]
    search_fields = ["actor", "target_id"]
    show_full_result_count = False
