"""Messages queued for providers and their webhooks (never a secret)."""

from __future__ import annotations

from django.contrib import admin

from registry.admin.actions import ReadOnlyAdmin
from registry.admin.site import admin_site
from registry.models import Message, Webhook


@admin.register(Message, site=admin_site)
class MessageAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "provider",
        "kind",
        "created_at",
        "acked_at",
        "delivery_state",
        "delivery_attempts",
        "next_delivery_at",
    ]
    list_filter = ["kind", "delivery_state"]
    list_select_related = ["provider"]
    show_full_result_count = False


@admin.register(Webhook, site=admin_site)
class WebhookAdmin(ReadOnlyAdmin):
    list_display = ["url", "provider", "created_at", "removed_at", "last_success_at"]
    list_select_related = ["provider"]
    exclude = ["secret"]
