"""The lookup: where a vault number routes today (scope ``lookup``)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.views import APIView

from directory import history, receipts, selectors
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
            ),
            OpenApiParameter(
                "at",
                str,
                description="ISO 8601 time with offset: answer where the vault routed then",
            ),
        ],
        responses={
            200: VaultRoutingSerializer,
            400: OpenApiResponse(description="Malformed number (code says why)"),
            404: OpenApiResponse(description="No vault has this number"),
            410: OpenApiResponse(description="The vault is closed"),
        },
    )
    @receipts.signed_lookup  # every answer, refusals included, carries a signed receipt
    def get(self, request, number):
        parsed = parse_number(number)
        at = history.parse_at(request.query_params.get("at"))
        if at is not None:
            resolution = history.resolve_at(parsed.value, at)
        else:
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
        return json_response(receipts.attach_receipt(request, number, resolution.as_dict()))
