"""``/.well-known/vault-federation``: the federation document this registry accepted."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from directory.federation.models import FederationDocument
from registry.errors import ErrorCode, NotFound


class WellKnownFederationApi(APIView):
    """The latest federation document accepted (a C2SP signed note): public, as clients pin
    the federation's key and learn every member's keys from it."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="well_known_vault_federation",
        responses={
            200: OpenApiResponse(description="The signed note (text/plain)"),
            404: OpenApiResponse(description="no_federation: no document installed"),
        },
    )
    def get(self, request):
        row = FederationDocument.objects.order_by("-serial").first()
        if row is None:
            raise NotFound(ErrorCode.NO_FEDERATION, "This registry has no federation document.")
        response = HttpResponse(row.signed, content_type="text/plain; charset=utf-8")
        response["Cache-Control"] = "public, max-age=60"
        return response
