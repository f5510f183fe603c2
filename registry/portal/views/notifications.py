"""The provider's messages from the registry (the API's poll queue, as an inbox) and its
webhook. Acknowledging and registering go through the API's services
(``registry.services.messages``), audited with the person's name; the webhook's secret is shown
once, after a redirect, on a page that is never cached."""

from __future__ import annotations

from django.contrib import messages as flash
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST

from registry import numbers
from registry.errors import DomainError
from registry.models import DeliveryState, Message, Webhook
from registry.portal.access import attempt, member_view, refuse
from registry.portal.errors import field_errors
from registry.portal.forms import WebhookForm
from registry.portal.models import Role
from registry.services import messages

PROVIDER = "provider"
SECRET_SESSION_KEY = "portal_webhook_secret"
ACK_ALL_MAX = 500


def _summary(message: Message) -> dict[str, object]:
    """What a person needs from a message's data: the vault, the transfer, the certificate."""
    data = message.payload or {}
    vault = data.get("vault")
    when = data.get("deadline") if message.kind == "transfer.requested" else data.get("not_after")
    return {
        "vault": numbers.format_display(vault) if vault else "",
        "transfer": data.get("transfer"),
        "fingerprint": data.get("fingerprint_sha256", ""),
        "when": parse_datetime(when) if when else None,
        "when_label": _("deadline") if message.kind == "transfer.requested" else _("expires"),
    }


@member_view(kind=PROVIDER)
def message_list(request):
    """Unacknowledged messages by default, newest first; ``?show=all`` adds the others."""
    provider = request.organisation
    show_all = request.GET.get("show") == "all"
    query = Message.objects.filter(provider=provider).order_by("-id")
    if not show_all:
        query = query.filter(acked_at__isnull=True)
    page = Paginator(query, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "portal/provider/messages.html",
        {
            "page": page,
            "rows": [(m, _summary(m)) for m in page],
            "show_all": show_all,
            "unread": Message.objects.filter(provider=provider, acked_at__isnull=True).count(),
        },
    )


@member_view(role=Role.OPERATOR, kind=PROVIDER)
@require_POST
def message_ack(request, pk):
    message = get_object_or_404(Message, pk=pk, provider=request.organisation)
    attempt(
        request,
        lambda: messages.message_ack(
            actor=request.actor, provider=request.organisation, message_id=message.pk
        ),
        _("Message marked as read."),
    )
    return redirect("portal:messages")


@member_view(role=Role.OPERATOR, kind=PROVIDER)
@require_POST
def message_ack_all(request):
    """Acknowledge every unread message (oldest first, at most ACK_ALL_MAX at a time), each
    through the service as the API does it one by one."""
    provider = request.organisation
    ids = list(
        Message.objects.filter(provider=provider, acked_at__isnull=True)
        .order_by("id")
        .values_list("pk", flat=True)[:ACK_ALL_MAX]
    )
    for message_id in ids:
        messages.message_ack(actor=request.actor, provider=provider, message_id=message_id)
    flash.success(
        request,
        ngettext(
            "%(count)d message marked as read.", "%(count)d messages marked as read.", len(ids)
        )
        % {"count": len(ids)},
    )
    return redirect("portal:messages")


@member_view(kind=PROVIDER)
def webhook(request):
    """The live webhook and its delivery backlog; operators register, replace or remove it."""
    provider = request.organisation
    form = WebhookForm(request.POST or None)
    if request.method == "POST":
        if not request.membership.may(Role.OPERATOR):
            return refuse(request, _("Your role does not allow this."))
        if form.is_valid():
            try:
                _webhook, secret = messages.webhook_register(
                    actor=request.actor, provider=provider, url=form.cleaned_data["url"]
                )
            except DomainError as exc:
                for field, message in field_errors(exc, default_field="url"):
                    form.add_error(field, message)
            else:
                request.session[SECRET_SESSION_KEY] = secret
                flash.success(request, _("Webhook registered: messages are pushed to it."))
                return redirect("portal:webhook")
    waiting = Message.objects.filter(provider=provider, acked_at__isnull=True)
    return render(
        request,
        "portal/provider/webhook.html",
        {
            "form": form,
            "webhook": Webhook.objects.live().filter(provider=provider).first(),
            "new_secret": request.session.pop(SECRET_SESSION_KEY, None),
            "pending": waiting.filter(delivery_state=DeliveryState.PENDING).count(),
            "abandoned": waiting.filter(delivery_state=DeliveryState.ABANDONED).count(),
        },
    )


@member_view(role=Role.OPERATOR, kind=PROVIDER)
@require_POST
def webhook_remove(request):
    attempt(
        request,
        lambda: messages.webhook_remove(actor=request.actor, provider=request.organisation),
        _("Webhook removed: messages stay in your inbox and the API's queue."),
    )
    return redirect("portal:webhook")
