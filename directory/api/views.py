"""The lookup: where a vault number routes today (scope ``lookup``)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.views import APIView

from directory import selectors
from directory.api.rendering import json_response
from directory.api.serializers import VaultRoutingSerializer
from registry.api.auth import LookupScope
from registry.errors import ErrorCode, Gone, NotFound
from registry.federation import parse_number
from registry.models import VaultStatus


class VaultLookupApi(APIView):
    """Resolve one vault number, in any input form, to its routing record."""

    permission_classes = [LookupScope]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "number",
                str,
                OpenApiParameter.PATH,
                description="Any form: FR97 VLT1 0123…, fr97-vlt1-…",
            )
        ],
        responses={
            200: VaultRoutingSerializer,
            400: OpenApiResponse(description="Malformed number (code says why)"),
            404: OpenApiResponse(description="No vault has this number"),
            410: OpenApiResponse(description="The vault is closed"),
        },
    )
    def get(self, request, number):
        parsed = parse_number(number)
        resolution = selectors.resolve_one(parsed.value)
        if resolution is None:
            raise NotFound(
                ErrorCode.VAULT_NOT_FOUND,
                "No vault has this number.",
                extra={"number": parsed.value},
            )
        if resolution.status == VaultStatus.CLOSED:
            raise Gone(
                ErrorCode.VAULT_CLOSED,
                "This vault is closed; do not deliver to it.",
                extra={"number": parsed.value, "log_sequence": resolution.log_sequence},
            )
        return json_response(resolution.as_dict())
