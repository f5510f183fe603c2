"""The lookup: where a vault number routes today (scope ``lookup``)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.views import APIView

from directory import history, proven, receipts
from directory.api.rendering import json_response
from directory.api.serializers import VaultRoutingSerializer
from registry import metrics
from registry.api.auth import BearerTokenAuthentication, LookupScope
from registry.api.errors import problem_from_exception
from registry.federation import parse_number
from registry.numbers import format_display
from registry.routers import reads_from_replica


class VaultLookupApi(APIView):
    """Resolve one vault number, in any input form, to its routing record."""

    permission_classes = [LookupScope]

    def dispatch(self, request, number):
        """The hot path, without DRF's request wrapping, negotiation and throttling: the same
        authentication, scope check and problem+json answers, called directly."""
        self.request, self.headers = request, {}
        try:
            if request.method != "GET":
                raise exceptions.MethodNotAllowed(request.method)
            authenticated = BearerTokenAuthentication().authenticate(request)
            if authenticated is None:
                raise exceptions.NotAuthenticated()
            request.user = authenticated[0]
            scope = LookupScope()
            if not scope.has_permission(request, self):
                raise exceptions.PermissionDenied(scope.message, code=scope.code)
            response = self.get(request, number)
        except Exception as exc:  # every failure becomes problem+json
            response = problem_from_exception(exc, request)
        issuer = getattr(getattr(request, "user", None), "issuer", None)
        if issuer is not None:
            metrics.count_lookup(str(issuer.pk), response.status_code)
        return response

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
            404: OpenApiResponse(description="No vault has this number (with a proof of absence)"),
            410: OpenApiResponse(description="The vault is closed (with its proven record)"),
            503: OpenApiResponse(description="No checkpoint signed yet (no_checkpoint)"),
        },
    )
    @reads_from_replica
    @receipts.signed_lookup  # every answer, refusals included, carries a signed receipt
    def get(self, request, number):
        parsed = parse_number(number)
        at = history.parse_at(history.at_parameter(request))
        result = proven.lookup(parsed.value, at)
        receipt = receipts.lookup_receipt(request, number, result)
        if result.status != 200:
            error = proven.refusal(result)
            error.extra["receipt"] = receipt
            raise error
        body = {
            "display": format_display(result.number),
            **result.fields,
            "at": result.at,
            "proof": result.proof(),
            "receipt": receipt,
        }
        return json_response(body)
