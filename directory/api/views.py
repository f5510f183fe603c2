"""The lookup: where a vault number routes today (scope ``lookup``)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.views import APIView

from directory import history, proven, receipts
from directory.api.purposes import purpose_asked
from directory.api.rendering import json_response
from directory.api.serializers import VaultRoutingSerializer
from directory.federation import forwarding, members, signatures, traffic
from registry import metrics, ratelimit, usage
from registry.api.auth import BearerTokenAuthentication, LookupScope
from registry.api.errors import problem_from_exception
from registry.federation import parse_number
from registry.models.organisations import Purpose
from registry.numbers import format_display
from registry.routers import reads_from_replica

# Answers that say something about the number asked: counted in the issuer's usage.
_COUNTED = frozenset({200, 404, 410})


class PeerPrincipal:
    """Another member registry asking on behalf of one of its issuers (a signed request)."""

    is_authenticated = True
    is_anonymous = False
    issuer = None
    provider = None

    def __init__(self, peer: signatures.PeerRequest):
        self.peer = peer
        self.attribution = peer.attribution


def authenticate_lookup(request, view) -> None:
    """An issuer's bearer token with the lookup scope, or a member registry's signature (a
    request carrying ``Signature-Input`` or ``Vault-Federation-Issuer``, and no token)."""
    meta = request.META
    peer = "HTTP_SIGNATURE_INPUT" in meta or "HTTP_VAULT_FEDERATION_ISSUER" in meta
    if peer and "HTTP_AUTHORIZATION" not in meta:
        request.user = PeerPrincipal(signatures.verify_request(request))
        traffic.count(request.user.peer.member.name, traffic.IN, traffic.LOOKUP, 1)
        return
    authenticated = BearerTokenAuthentication().authenticate(request)
    if authenticated is None:
        raise exceptions.NotAuthenticated()
    request.user = authenticated[0]
    scope = LookupScope()
    if not scope.has_permission(request, view):
        raise exceptions.PermissionDenied(scope.message, code=scope.code)


class VaultLookupApi(APIView):
    """Resolve one vault number, in any input form, to its routing record."""

    permission_classes = [LookupScope]
    rate_limit = "token"  # per token and minute (registry.ratelimit), documented 429

    def dispatch(self, request, number):
        """The hot path, without DRF's request wrapping, negotiation and throttling: the same
        authentication, scope check and problem+json answers, called directly; then the token's
        rate limit (one Redis round trip) and the issuer's usage count (in memory)."""
        self.request, self.headers = request, {}
        window = None
        try:
            if request.method != "GET":
                raise exceptions.MethodNotAllowed(request.method)
            authenticate_lookup(request, self)
            if getattr(request.user, "issuer", None) is not None:  # issuers are limited
                window = ratelimit.charge_issuer(request.user)
            response = self.get(request, number)
        except Exception as exc:  # every failure becomes problem+json
            response = problem_from_exception(exc, request)
        if window is not None:
            for name, value in window.headers().items():
                response[name] = value
        issuer = getattr(getattr(request, "user", None), "issuer", None)
        if response.status_code in _COUNTED and issuer is not None:
            purpose = getattr(request, "lookup_purpose", "")
            usage.record(issuer.pk, purpose, numbers=1, unknown=int(response.status_code == 404))
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
            OpenApiParameter(
                "purpose",
                str,
                enum=Purpose.values,
                description="Why you deliver (one of your organisation's purposes): only the "
                "endpoints accepting this document type are answered, and a provider with none "
                "makes the vault undeliverable (no_endpoint_for_purpose)",
            ),
            OpenApiParameter(
                "forward",
                bool,
                description="false: a number of another member is answered with a referral "
                "(421 referred) instead of its home registry's answer",
            ),
        ],
        responses={
            200: VaultRoutingSerializer,
            400: OpenApiResponse(description="Malformed number or unknown purpose"),
            403: OpenApiResponse(description="purpose_not_allowed for your organisation"),
            404: OpenApiResponse(description="No vault has this number (with a proof of absence)"),
            410: OpenApiResponse(description="The vault is closed (with its proven record)"),
            421: OpenApiResponse(description="referred: ?forward=false, the home registry's URL"),
            502: OpenApiResponse(description="The home registry is down (registry_unavailable)"),
            503: OpenApiResponse(description="No checkpoint signed yet (no_checkpoint)"),
            504: OpenApiResponse(description="The home registry is too slow (registry_timeout)"),
        },
    )
    @reads_from_replica
    @receipts.signed_lookup  # every answer, refusals included, carries a signed receipt
    def get(self, request, number):
        parsed = parse_number(number)
        purpose = request.lookup_purpose = purpose_asked(request)
        if not members.is_local(parsed.allocator):
            return self.foreign(request, number, parsed.allocator, purpose)
        at = history.parse_at(history.at_parameter(request))
        result = proven.lookup(parsed.value, at, purpose)
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

    def foreign(self, request, number: str, allocator: str, purpose: str):
        """A number of another member: its home registry's answer, untouched, or a referral
        (always to a member registry asking: a question is never forwarded twice)."""
        home = members.home_of(allocator)
        if isinstance(request.user, PeerPrincipal) or request.GET.get("forward", "").lower() in {
            "false",
            "0",
            "no",
        }:
            raise forwarding.referral(home, number)
        issuer = str(request.user.issuer.pk)
        return forwarding.forward_lookup(
            home, number, history.at_parameter(request), issuer, purpose
        )
