"""Portability over the API (scope ``provider``): transfer codes, transfers, transfer locks.

A provider sees a transfer only when it is the gaining or the losing side; any other transfer is
not found (404). Overdue transfers are settled before anything is read or changed here, so no
answer shows a transfer pending past its deadline.
"""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import generics, serializers, status
from rest_framework.response import Response

from registry import transfer_codes
from registry.api import serializers as s
from registry.api.pagination import CursorPagination
from registry.api.views import _ProviderApi, provider_vault
from registry.errors import ErrorCode, NotFound
from registry.federation import parse_number
from registry.models import (
    RejectionReason,
    Transfer,
    TransferCode,
    TransferCodeState,
    TransferSide,
    TransferState,
)
from registry.numbers import format_display
from registry.services import transfers

# --- Serializers ----------------------------------------------------------------------------------


class TransferCodeSerializer(serializers.Serializer):
    """A code's record: never its value, which only the issuing answer shows."""

    id = serializers.UUIDField()
    vault = serializers.CharField(source="vault_id")
    state = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    failed_attempts = serializers.IntegerField()
    used_at = serializers.DateTimeField(allow_null=True)
    voided_at = serializers.DateTimeField(allow_null=True)
    void_reason = serializers.CharField(allow_blank=True)

    @extend_schema_field(serializers.ChoiceField(choices=TransferCodeState.choices))
    def get_state(self, code: TransferCode) -> str:
        return code.state(self.context.get("now") or timezone.now())


class IssuedTransferCodeSerializer(TransferCodeSerializer):
    code = serializers.CharField(help_text="The code, shown this once: give it to the holder.")
    display = serializers.CharField(help_text="The code in groups of four, as the holder types it")


class TransferProviderSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    legal_name = serializers.CharField()


class TimelineEventSerializer(serializers.Serializer):
    event = serializers.CharField(help_text="requested, or the outcome state")
    at = serializers.DateTimeField()
    by = serializers.ChoiceField(choices=TransferSide.choices)
    reason = serializers.CharField(required=False, allow_blank=True)


class TransferSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    vault = serializers.CharField(source="vault_id")
    vault_display = serializers.SerializerMethodField()
    state = serializers.ChoiceField(choices=TransferState.choices)
    direction = serializers.SerializerMethodField(
        help_text="incoming: the vault comes to you; outgoing: it leaves you"
    )
    losing_provider = TransferProviderSerializer()
    gaining_provider = TransferProviderSerializer()
    consent_reference = serializers.CharField()
    requested_at = serializers.DateTimeField()
    deadline = serializers.DateTimeField()
    resolved_at = serializers.DateTimeField(allow_null=True)
    outcome_reason = serializers.CharField(allow_blank=True)
    outcome_note = serializers.CharField(allow_blank=True)
    log_sequence = serializers.IntegerField(allow_null=True)
    timeline = TimelineEventSerializer(many=True)

    def get_vault_display(self, transfer: Transfer) -> str:
        return format_display(transfer.vault_id)

    def get_direction(self, transfer: Transfer) -> str:
        provider = self.context["provider"]
        return "incoming" if transfer.gaining_provider_id == provider.pk else "outgoing"


class TransferRequestSerializer(serializers.Serializer):
    vault = serializers.CharField(max_length=60, help_text="The vault number, in any form")
    code = serializers.CharField(max_length=60, help_text="The holder's transfer code")
    consent_reference = serializers.CharField(
        max_length=200, help_text="Your reference of the holder's signed consent"
    )


class TransferRejectSerializer(serializers.Serializer):
    reason = serializers.ChoiceField(choices=RejectionReason.choices)
    comment = serializers.CharField(max_length=2000, required=False, default="", allow_blank=True)


class TransferFilterSerializer(serializers.Serializer):
    direction = serializers.ChoiceField(choices=["incoming", "outgoing"], required=False)
    state = serializers.ChoiceField(choices=TransferState.choices, required=False)
    vault = serializers.CharField(max_length=60, required=False, help_text="Any form")


# --- Views ----------------------------------------------------------------------------------------


class TransferPagination(CursorPagination):
    ordering = ("-requested_at", "-id")


def visible_transfer(provider, pk) -> Transfer:
    """One transfer the provider is a side of; anybody else's is not found."""
    transfer = (
        Transfer.objects.involving(provider)
        .select_related("losing_provider", "gaining_provider")
        .filter(pk=pk)
        .first()
    )
    if transfer is None:
        raise NotFound(ErrorCode.TRANSFER_NOT_FOUND, "There is no such transfer.")
    return transfer


class TransferCodeApi(_ProviderApi):
    """The transfer code of one of your vaults: its state, or issue a new one for the holder."""

    @extend_schema(
        responses={
            200: TransferCodeSerializer,
            404: OpenApiResponse(description="vault_not_found or transfer_code_not_found"),
        }
    )
    def get(self, request, number):
        vault = provider_vault(self.provider, number)
        code = transfers.transfer_code_current(provider=self.provider, vault=vault)
        if code is None:
            raise NotFound(ErrorCode.TRANSFER_CODE_NOT_FOUND, "No code was issued for this vault.")
        return Response(TransferCodeSerializer(code, context={"now": timezone.now()}).data)

    @extend_schema(
        request=None,
        responses={
            201: IssuedTransferCodeSerializer,
            404: OpenApiResponse(description="vault_not_found"),
            409: OpenApiResponse(description="registry_locked"),
            410: OpenApiResponse(description="vault_closed"),
        },
    )
    def post(self, request, number):
        vault = provider_vault(self.provider, number)
        code, value = transfers.transfer_code_issue(
            actor=self.actor, provider=self.provider, vault=vault
        )
        code.code = value
        code.display = transfer_codes.format_display(value)
        data = IssuedTransferCodeSerializer(code, context={"now": code.created_at}).data
        return Response(data, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


class TransferCodeRevokeApi(_ProviderApi):
    """Revoke the usable transfer code of one of your vaults."""

    @extend_schema(
        request=None,
        responses={
            200: TransferCodeSerializer,
            404: OpenApiResponse(description="vault_not_found or transfer_code_not_found"),
        },
    )
    def post(self, request, number):
        vault = provider_vault(self.provider, number)
        code = transfers.transfer_code_revoke(actor=self.actor, provider=self.provider, vault=vault)
        return Response(TransferCodeSerializer(code, context={"now": timezone.now()}).data)


class _TransferProhibitionApi(_ProviderApi):
    prohibited = True

    @extend_schema(request=None, responses=s.VaultSerializer)
    def post(self, request, number):
        vault = transfers.vault_set_transfer_prohibited(
            actor=self.actor,
            provider=self.provider,
            vault=provider_vault(self.provider, number),
            prohibited=self.prohibited,
        )
        return Response(s.VaultSerializer(vault).data)


class VaultProhibitTransferApi(_TransferProhibitionApi):
    """Set ``client_transfer_prohibited`` on the holder's request: transfer requests are refused."""

    prohibited = True


class VaultAllowTransferApi(_TransferProhibitionApi):
    """Clear ``client_transfer_prohibited``: the vault may move again."""

    prohibited = False


class TransferListRequestApi(_ProviderApi, generics.GenericAPIView):
    """Your incoming and outgoing transfers (newest first), or request the move of a vault."""

    pagination_class = TransferPagination
    serializer_class = TransferSerializer

    def get_queryset(self):
        return Transfer.objects.involving(self.provider).select_related(
            "losing_provider", "gaining_provider"
        )

    @extend_schema(parameters=[TransferFilterSerializer], responses=TransferSerializer(many=True))
    def get(self, request):
        filters = TransferFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        wanted = filters.validated_data
        transfers.transfer_settle_overdue(provider=self.provider)
        queryset = self.get_queryset()
        if wanted.get("direction") == "incoming":
            queryset = queryset.filter(gaining_provider=self.provider)
        elif wanted.get("direction") == "outgoing":
            queryset = queryset.filter(losing_provider=self.provider)
        if "state" in wanted:
            queryset = queryset.filter(state=wanted["state"])
        if "vault" in wanted:
            queryset = queryset.filter(vault_id=parse_number(wanted["vault"]).value)
        page = self.paginate_queryset(queryset)
        data = TransferSerializer(page, many=True, context={"provider": self.provider}).data
        return self.get_paginated_response(data)

    @extend_schema(
        request=TransferRequestSerializer,
        responses={
            201: TransferSerializer,
            400: OpenApiResponse(description="Malformed vault number or transfer_code_malformed"),
            403: OpenApiResponse(
                description="transfer_code_invalid, transfer_code_expired, transfer_code_locked"
            ),
            404: OpenApiResponse(description="vault_not_found"),
            409: OpenApiResponse(
                description=(
                    "already_hosted_here, registry_locked, client_transfer_prohibited, "
                    "vault_on_hold, transfer_already_pending, post_transfer_lock, "
                    "gaining_provider_not_active"
                )
            ),
            410: OpenApiResponse(description="vault_closed"),
        },
    )
    def post(self, request):
        data = TransferRequestSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        number = parse_number(data.validated_data["vault"]).value
        transfers.transfer_settle_overdue(vault_numbers=[number])
        transfer = transfers.transfer_request(
            actor=self.actor,
            gaining_provider=self.provider,
            number=number,
            code=data.validated_data["code"],
            consent_reference=data.validated_data["consent_reference"],
        )
        transfer = visible_transfer(self.provider, transfer.pk)
        return Response(
            TransferSerializer(transfer, context={"provider": self.provider}).data,
            status=status.HTTP_201_CREATED,
        )


class TransferDetailApi(_ProviderApi):
    """One of your transfers, with its timeline."""

    @extend_schema(
        responses={200: TransferSerializer, 404: OpenApiResponse(description="transfer_not_found")}
    )
    def get(self, request, pk):
        transfers.transfer_settle_overdue(provider=self.provider, transfer_ids=[pk])
        transfer = visible_transfer(self.provider, pk)
        return Response(TransferSerializer(transfer, context={"provider": self.provider}).data)


_ACTION_RESPONSES = {
    200: TransferSerializer,
    403: OpenApiResponse(description="not_losing_provider or not_gaining_provider"),
    404: OpenApiResponse(description="transfer_not_found"),
    409: OpenApiResponse(
        description="invalid_transfer_state, transfer_deadline_passed, gaining_provider_not_active"
    ),
}


class _TransferActionApi(_ProviderApi):
    input_serializer: type[serializers.Serializer] | None = None

    def act(self, transfer: Transfer, **data) -> Transfer:
        raise NotImplementedError

    def post(self, request, pk):
        data = {}
        if self.input_serializer is not None:
            parsed = self.input_serializer(data=request.data)
            parsed.is_valid(raise_exception=True)
            data = parsed.validated_data
        transfers.transfer_settle_overdue(provider=self.provider, transfer_ids=[pk])
        transfer = self.act(visible_transfer(self.provider, pk), **data)
        transfer = visible_transfer(self.provider, transfer.pk)
        return Response(TransferSerializer(transfer, context={"provider": self.provider}).data)


class TransferApproveApi(_TransferActionApi):
    """Losing provider: let the vault go now (``client_approved``) to the gaining provider."""

    @extend_schema(request=None, responses=_ACTION_RESPONSES)
    def post(self, request, pk):
        return super().post(request, pk)

    def act(self, transfer, **data):
        return transfers.transfer_approve(
            actor=self.actor, provider=self.provider, transfer=transfer
        )


class TransferRejectApi(_TransferActionApi):
    """Losing provider: refuse the move on an enumerated ground (``client_rejected``)."""

    input_serializer = TransferRejectSerializer

    @extend_schema(request=TransferRejectSerializer, responses=_ACTION_RESPONSES)
    def post(self, request, pk):
        return super().post(request, pk)

    def act(self, transfer, **data):
        return transfers.transfer_reject(
            actor=self.actor, provider=self.provider, transfer=transfer, **data
        )


class TransferCancelApi(_TransferActionApi):
    """Gaining provider: withdraw your request (``client_cancelled``)."""

    @extend_schema(request=None, responses=_ACTION_RESPONSES)
    def post(self, request, pk):
        return super().post(request, pk)

    def act(self, transfer, **data):
        return transfers.transfer_cancel(
            actor=self.actor, provider=self.provider, transfer=transfer
        )
