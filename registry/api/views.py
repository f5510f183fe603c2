"""Onboarding (public) and provider self-service (scope ``provider``) endpoints.

Views are thin: parse with an input serializer, call one service, answer with an output
serializer. A provider only ever reaches its own records: everything is looked up through
``request.user.provider``, so another provider's record is simply not found (404, not 403).
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from registry.api import serializers as s
from registry.api.auth import ProviderScope
from registry.api.retry import RetryWritesMixin
from registry.api.throttles import AddressRateThrottle
from registry.errors import ErrorCode, NotFound
from registry.federation import parse_number
from registry.models import Certificate, Endpoint, Vault
from registry.services import organisations, routing, transfers, vaults
from registry.services.common import Actor
from registry.services.vaults import HoldKind

# --- Onboarding -----------------------------------------------------------------------------------


class _ApplicationApi(RetryWritesMixin, APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AddressRateThrottle]
    address_rate_scope = "applications"
    input_serializer: type = s.ProviderApplicationSerializer

    def post(self, request):
        data = self.input_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        organisation = self.apply(
            actor=Actor.public(request.META.get("REMOTE_ADDR", "")), **data.validated_data
        )
        return Response(
            s.ApplicationOutputSerializer(organisation).data, status=status.HTTP_201_CREATED
        )


class ProviderApplicationApi(_ApplicationApi):
    """Apply to join the federation as a vault provider; lands as ``applied``."""

    input_serializer = s.ProviderApplicationSerializer
    apply = staticmethod(organisations.provider_apply)

    @extend_schema(
        request=s.ProviderApplicationSerializer,
        responses={201: s.ApplicationOutputSerializer},
        auth=[],
    )
    def post(self, request):
        return super().post(request)


class IssuerApplicationApi(_ApplicationApi):
    """Apply to resolve vault numbers as an issuer; lands as ``applied``."""

    input_serializer = s.IssuerApplicationSerializer
    apply = staticmethod(organisations.issuer_apply)

    @extend_schema(
        request=s.IssuerApplicationSerializer,
        responses={201: s.ApplicationOutputSerializer},
        auth=[],
    )
    def post(self, request):
        return super().post(request)


# --- Provider self-service ------------------------------------------------------------------------


class _ProviderApi(RetryWritesMixin, APIView):
    permission_classes = [ProviderScope]

    @property
    def provider(self):
        return self.request.user.provider

    @property
    def actor(self) -> Actor:
        return self.request.user.actor


class EndpointListCreateApi(_ProviderApi):
    """The provider's delivery endpoints: list them all, or publish a new one."""

    @extend_schema(responses=s.EndpointSerializer(many=True))
    def get(self, request):
        endpoints = Endpoint.objects.filter(provider=self.provider)
        return Response(s.EndpointSerializer(endpoints, many=True).data)

    @extend_schema(request=s.EndpointInputSerializer, responses={201: s.EndpointSerializer})
    def post(self, request):
        data = s.EndpointInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        endpoint = routing.endpoint_create(
            actor=self.actor, provider=self.provider, **data.validated_data
        )
        return Response(s.EndpointSerializer(endpoint).data, status=status.HTTP_201_CREATED)


class EndpointDeactivateApi(_ProviderApi):
    """Stop publishing one of the provider's endpoints."""

    @extend_schema(request=None, responses=s.EndpointSerializer)
    def post(self, request, pk):
        endpoint = get_object_or_404(Endpoint, pk=pk, provider=self.provider)
        endpoint = routing.endpoint_deactivate(actor=self.actor, endpoint=endpoint)
        return Response(s.EndpointSerializer(endpoint).data)


class CertificateListCreateApi(_ProviderApi):
    """The provider's certificates: list them all, or upload a PEM for a declared use."""

    @extend_schema(responses=s.CertificateSerializer(many=True))
    def get(self, request):
        certificates = Certificate.objects.filter(provider=self.provider)
        return Response(s.CertificateSerializer(certificates, many=True).data)

    @extend_schema(request=s.CertificateInputSerializer, responses={201: s.CertificateSerializer})
    def post(self, request):
        data = s.CertificateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        certificate = routing.certificate_upload(
            actor=self.actor, provider=self.provider, **data.validated_data
        )
        return Response(s.CertificateSerializer(certificate).data, status=status.HTTP_201_CREATED)


class CertificateRetireApi(_ProviderApi):
    """Retire one of the provider's certificates."""

    @extend_schema(request=None, responses=s.CertificateSerializer)
    def post(self, request, pk):
        certificate = get_object_or_404(Certificate, pk=pk, provider=self.provider)
        certificate = routing.certificate_retire(actor=self.actor, certificate=certificate)
        return Response(s.CertificateSerializer(certificate).data)


class VaultListAllocateApi(_ProviderApi, generics.GenericAPIView):
    """The provider's vaults (cursor-paginated), or allocate a new number for a new holder."""

    serializer_class = s.VaultSerializer

    def get_queryset(self):
        return Vault.objects.filter(provider=self.provider)

    @extend_schema(responses=s.VaultSerializer(many=True))
    def get(self, request):
        transfers.transfer_settle_overdue(provider=self.provider)
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.VaultSerializer(page, many=True).data)

    @extend_schema(request=None, responses={201: s.VaultSerializer})
    def post(self, request):
        vault = vaults.vault_allocate(actor=self.actor, provider=self.provider)
        return Response(s.VaultSerializer(vault).data, status=status.HTTP_201_CREATED)


def provider_vault(provider, raw_number: str) -> Vault:
    """One of ``provider``'s vaults by any input form of its number; 404 for anybody else's."""
    number = parse_number(raw_number)
    # An overdue transfer is applied first: the vault may no longer be this provider's.
    transfers.transfer_settle_overdue(vault_numbers=[number.value])
    vault = Vault.objects.filter(pk=number.value, provider=provider).first()
    if vault is None:
        raise NotFound(ErrorCode.VAULT_NOT_FOUND, "You host no vault with this number.")
    return vault


class VaultDetailApi(_ProviderApi):
    """One of the provider's vaults."""

    @extend_schema(responses=s.VaultSerializer)
    def get(self, request, number):
        return Response(s.VaultSerializer(provider_vault(self.provider, number)).data)


class _VaultActionApi(_ProviderApi):
    def act(self, vault: Vault) -> Vault:
        raise NotImplementedError

    @extend_schema(request=None, responses=s.VaultSerializer)
    def post(self, request, number):
        vault = self.act(provider_vault(self.provider, number))
        return Response(s.VaultSerializer(vault).data)


class VaultHoldApi(_VaultActionApi):
    """Set ``client_hold``: issuers are told not to deliver to this vault."""

    def act(self, vault):
        return vaults.vault_hold(actor=self.actor, vault=vault, kind=HoldKind.CLIENT)


class VaultReleaseApi(_VaultActionApi):
    """Lift the provider's ``client_hold``."""

    def act(self, vault):
        return vaults.vault_release(actor=self.actor, vault=vault, kind=HoldKind.CLIENT)


class VaultCloseApi(_VaultActionApi):
    """Close the vault for good; lookups answer 410 Gone from now on."""

    def act(self, vault):
        return vaults.vault_close(actor=self.actor, vault=vault)
