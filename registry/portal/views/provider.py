"""The provider portal: readiness, endpoints, certificates, vaults, transfers.

Thin views: parse a form, call one service with the person as actor, answer. Refusals are
messages in the reader's language; secrets (transfer codes) are shown once, after a redirect.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from registry import numbers, transfer_codes
from registry.errors import DomainError
from registry.federation import parse_number
from registry.models import (
    Certificate,
    Endpoint,
    Message,
    RejectionReason,
    ServerCancelCause,
    Transfer,
    Vault,
    VaultStatus,
)
from registry.portal import selectors
from registry.portal.access import attempt, member_view, refuse
from registry.portal.errors import explain
from registry.portal.forms import (
    CertificateForm,
    CloseForm,
    EndpointForm,
    RejectForm,
    TransferRequestForm,
    VaultSearchForm,
)
from registry.portal.models import Role
from registry.services import routing, transfers, vaults
from registry.services.vaults import HoldKind

PROVIDER = "provider"
CODE_SESSION_KEY = "portal_transfer_code"


def home(request):
    """The provider's start page: can it receive documents, and if not, why."""
    provider = request.organisation
    readiness = selectors.provider_readiness(provider)
    now = timezone.now()
    pending = Transfer.objects.pending().filter(losing_provider=provider).count()
    return render(
        request,
        "portal/provider/home.html",
        {
            "provider": provider,
            "readiness": readiness,
            "certificates": [
                (c, selectors.days_left(c.not_after, now)) for c in readiness.certificates
            ],
            "vault_count": Vault.objects.open().filter(provider=provider).count(),
            "pending_outgoing": pending,
            "unread_messages": Message.objects.filter(
                provider=provider, acked_at__isnull=True
            ).count(),
        },
    )


@member_view(kind=PROVIDER)
def endpoints(request):
    provider = request.organisation
    form = EndpointForm(request.POST or None)
    if request.method == "POST":
        if not request.membership.may(Role.OPERATOR):
            return refuse(request, _("Your role does not allow this."))
        if form.is_valid():
            done = attempt(
                request,
                lambda: routing.endpoint_create(
                    actor=request.actor,
                    provider=provider,
                    transport_profile=form.cleaned_data["transport_profile"],
                    url=form.cleaned_data["url"],
                    document_types=form.cleaned_data["document_types"],
                ),
                _("Endpoint published."),
            )
            if done:
                return redirect("portal:endpoints")
    rows = Endpoint.objects.filter(provider=provider).order_by("deactivated_at", "-created_at")
    return render(request, "portal/provider/endpoints.html", {"form": form, "endpoints": rows})


@member_view(role=Role.OPERATOR, kind=PROVIDER)
def endpoint_deactivate(request, pk):
    endpoint = get_object_or_404(
        Endpoint, pk=pk, provider=request.organisation, deactivated_at__isnull=True
    )
    if request.method == "POST" and attempt(
        request,
        lambda: routing.endpoint_deactivate(actor=request.actor, endpoint=endpoint),
        _("Endpoint deactivated."),
    ):
        return redirect("portal:endpoints")
    return render(
        request,
        "portal/provider/endpoint_deactivate.html",
        {"endpoint": endpoint, "affected": selectors.vaults_affected_by_endpoint(endpoint)},
    )


@member_view(kind=PROVIDER)
def certificates(request):
    provider = request.organisation
    form = CertificateForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if not request.membership.may(Role.OPERATOR):
            return refuse(request, _("Your role does not allow this."))
        if form.is_valid():
            try:
                routing.certificate_upload(
                    actor=request.actor,
                    provider=provider,
                    use=form.cleaned_data["use"],
                    pem=form.cleaned_data["pem"],
                )
            except DomainError as exc:
                field = (
                    "use" if exc.code in ("cert_unknown_use", "cert_key_usage_mismatch") else "pem"
                )
                form.add_error(field, explain(exc))
            else:
                messages.success(request, _("Certificate published."))
                return redirect("portal:certificates")
    now = timezone.now()
    rows = list(Certificate.objects.filter(provider=provider).order_by("use", "not_before"))
    return render(
        request,
        "portal/provider/certificates.html",
        {"form": form, "timeline": _timeline(rows, now), "now": now},
    )


def _timeline(rows: list[Certificate], now):
    """Each certificate as a bar on a common time axis (percentages), for the rollover view."""
    live = [c for c in rows if c.retired_at is None and c.not_after > now]
    if not live:
        return []
    start = min(now, *(c.not_before for c in live))
    end = max(c.not_after for c in live)
    span = (end - start).total_seconds() or 1
    bars = []
    for c in live:
        left = (c.not_before - start).total_seconds() / span * 100
        width = (c.not_after - c.not_before).total_seconds() / span * 100
        bars.append(
            {
                "certificate": c,
                "left": round(left, 1),
                "width": max(round(width, 1), 1),
                "days_left": selectors.days_left(c.not_after, now),
                "valid_now": c.not_before <= now < c.not_after,
            }
        )
    return bars


@member_view(role=Role.OPERATOR, kind=PROVIDER)
@require_POST
def certificate_retire(request, pk):
    certificate = get_object_or_404(Certificate, pk=pk, provider=request.organisation)
    attempt(
        request,
        lambda: routing.certificate_retire(actor=request.actor, certificate=certificate),
        _("Certificate retired."),
    )
    return redirect("portal:certificates")


@member_view(kind=PROVIDER)
def vault_list(request):
    provider = request.organisation
    form = VaultSearchForm(request.GET or None)
    query = Vault.objects.filter(provider=provider).order_by("-created_at", "number")
    if form.is_valid() and form.cleaned_data["q"]:
        try:
            number = parse_number(form.cleaned_data["q"]).value
        except numbers.InvalidNumber as exc:
            form.add_error("q", explain(exc))
            query = query.none()
        else:
            if query.filter(number=number).exists():
                return redirect("portal:vault", number=number)
            form.add_error("q", _("None of your vaults has this number."))
            query = query.none()
    page = Paginator(query, 50).get_page(request.GET.get("page"))
    return render(request, "portal/provider/vaults.html", {"form": form, "page": page})


@member_view(role=Role.OPERATOR, kind=PROVIDER)
@require_POST
def vault_allocate(request):
    vault = attempt(
        request, lambda: vaults.vault_allocate(actor=request.actor, provider=request.organisation)
    )
    if vault:
        messages.success(
            request,
            _("Vault %(number)s allocated.") % {"number": numbers.format_display(vault.number)},
        )
        return redirect("portal:vault", number=vault.number)
    return redirect("portal:vaults")


def _own_vault(request, number: str) -> Vault:
    return get_object_or_404(Vault, number=number, provider=request.organisation)


@member_view(kind=PROVIDER)
def vault_detail(request, number):
    vault = _own_vault(request, number)
    code = transfers.transfer_code_current(provider=request.organisation, vault=vault)
    now = timezone.now()
    return render(
        request,
        "portal/provider/vault.html",
        {
            "vault": vault,
            "display": numbers.format_display(vault.number),
            "code": code,
            "code_state": code.state(now) if code else None,
            "new_code": request.session.pop(CODE_SESSION_KEY, None),
            "open": vault.status != VaultStatus.CLOSED,
            "transfers": vault.transfers.involving(request.organisation).order_by("-requested_at"),
        },
    )


@member_view(role=Role.OPERATOR, kind=PROVIDER)
@require_POST
def vault_action(request, number, action):
    vault = _own_vault(request, number)
    actor, provider = request.actor, request.organisation
    calls = {
        "hold": (
            lambda: vaults.vault_hold(actor=actor, vault=vault, kind=HoldKind.CLIENT),
            _("Delivery to this vault is stopped."),
        ),
        "release": (
            lambda: vaults.vault_release(actor=actor, vault=vault, kind=HoldKind.CLIENT),
            _("Delivery to this vault is resumed."),
        ),
        "prohibit-transfer": (
            lambda: transfers.vault_set_transfer_prohibited(
                actor=actor, provider=provider, vault=vault, prohibited=True
            ),
            _("Moves of this vault are blocked."),
        ),
        "allow-transfer": (
            lambda: transfers.vault_set_transfer_prohibited(
                actor=actor, provider=provider, vault=vault, prohibited=False
            ),
            _("Moves of this vault are allowed again."),
        ),
        "revoke-code": (
            lambda: transfers.transfer_code_revoke(actor=actor, provider=provider, vault=vault),
            _("The transfer code is revoked."),
        ),
    }
    if action == "transfer-code":
        issued = attempt(
            request,
            lambda: transfers.transfer_code_issue(actor=actor, provider=provider, vault=vault),
        )
        if issued:
            _code, value = issued
            # in groups of four, as the holder will type it (any grouping is accepted)
            request.session[CODE_SESSION_KEY] = transfer_codes.format_display(value)
        return redirect("portal:vault", number=vault.number)
    if action not in calls:
        raise Http404
    call, success = calls[action]
    attempt(request, call, success)
    return redirect("portal:vault", number=vault.number)


@member_view(role=Role.OPERATOR, kind=PROVIDER)
def vault_close(request, number):
    vault = _own_vault(request, number)
    form = CloseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            typed = parse_number(form.cleaned_data["number"]).value
        except numbers.InvalidNumber:
            typed = ""
        if typed != vault.number:
            form.add_error("number", _("This is not the number of this vault."))
        elif attempt(
            request,
            lambda: vaults.vault_close(actor=request.actor, vault=vault),
            _("The vault is closed. Its number will never be used again."),
        ):
            return redirect("portal:vault", number=vault.number)
    return render(
        request,
        "portal/provider/vault_close.html",
        {"vault": vault, "display": numbers.format_display(vault.number), "form": form},
    )


@member_view(kind=PROVIDER)
def transfer_list(request):
    provider = request.organisation
    form = TransferRequestForm(request.POST or None)
    if request.method == "POST":
        if not request.membership.may(Role.OPERATOR):
            return refuse(request, _("Your role does not allow this."))
        if form.is_valid():
            done = attempt(
                request,
                lambda: transfers.transfer_request(
                    actor=request.actor,
                    gaining_provider=provider,
                    number=_number_or_raw(form.cleaned_data["vault"]),
                    code=form.cleaned_data["code"],
                    consent_reference=form.cleaned_data["consent_reference"],
                ),
                _("Transfer requested: the current provider has until the deadline to answer."),
            )
            if done:
                return redirect("portal:transfers")
    now = timezone.now()
    base = Transfer.objects.select_related("vault", "gaining_provider", "losing_provider")

    def rows(query):
        return [
            (t, selectors.working_days_left(t.deadline, now) if t.is_pending else None)
            for t in query.order_by("-requested_at")[:200]
        ]

    return render(
        request,
        "portal/provider/transfers.html",
        {
            "form": form,
            "outgoing": rows(base.filter(losing_provider=provider)),
            "incoming": rows(base.filter(gaining_provider=provider)),
            "reject_form": RejectForm(),
        },
    )


def _number_or_raw(value: str) -> str:
    """The normalised number when it parses; else as typed, for the service to refuse."""
    try:
        return parse_number(value).value
    except numbers.InvalidNumber:
        return value


@member_view(kind=PROVIDER)
def transfer_detail(request, pk):
    provider = request.organisation
    transfer = get_object_or_404(Transfer.objects.involving(provider), pk=pk)
    form = RejectForm(request.POST or None)
    if request.method == "POST":
        if not request.membership.may(Role.OPERATOR):
            return refuse(request, _("Your role does not allow this."))
        action = request.POST.get("action")
        actor = request.actor
        if action == "approve":
            attempt(
                request,
                lambda: transfers.transfer_approve(
                    actor=actor, provider=provider, transfer=transfer
                ),
                _("Transfer approved: the vault now routes to the gaining provider."),
            )
        elif action == "cancel":
            attempt(
                request,
                lambda: transfers.transfer_cancel(
                    actor=actor, provider=provider, transfer=transfer
                ),
                _("Transfer request withdrawn."),
            )
        elif action == "reject" and form.is_valid():
            attempt(
                request,
                lambda: transfers.transfer_reject(
                    actor=actor,
                    provider=provider,
                    transfer=transfer,
                    reason=form.cleaned_data["reason"],
                    comment=form.cleaned_data["comment"],
                ),
                _("Transfer rejected."),
            )
        else:
            return render(
                request,
                "portal/provider/transfer.html",
                _transfer_context(transfer, provider, form),
            )
        return redirect("portal:transfer", pk=transfer.pk)
    return render(
        request, "portal/provider/transfer.html", _transfer_context(transfer, provider, form)
    )


def _transfer_context(transfer, provider, form):
    now = timezone.now()
    return {
        "transfer": transfer,
        "side": transfer.side_of(provider),
        "display": numbers.format_display(transfer.vault_id),
        "working_days_left": selectors.working_days_left(transfer.deadline, now)
        if transfer.is_pending
        else None,
        "reject_form": form,
        "outcome_reason": _outcome_reason(transfer.outcome_reason),
    }


def _outcome_reason(code: str) -> str:
    """A rejection reason or a registry's cancel cause in the reader's language."""
    labels = {**dict(RejectionReason.choices), **dict(ServerCancelCause.choices)}
    return str(labels.get(code, code))
