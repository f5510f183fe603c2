"""Routing plans over HTTP: POST a statement run, GET the plan's proof record later."""

from __future__ import annotations

import hashlib
import threading

import orjson
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from directory.api.purposes import purpose_asked
from directory.api.rendering import NDJSONRenderer, json_response
from directory.api.views import PeerPrincipal
from directory.federation import members, signatures
from directory.federation import plans as federated
from directory.models import Checkpoint, RoutingPlan
from directory.plans import NDJSON, build_plan, read_numbers, routing_plan_record
from directory.receipts import receipt_for_plan
from directory.transparency.records import Reason
from registry import metrics, ratelimit, usage
from registry.api.auth import BearerTokenAuthentication, LookupScope
from registry.errors import ErrorCode, NotFound
from registry.models.organisations import Purpose
from registry.routers import reads_from_replica


class RoutingPlanRecordSerializer(serializers.ModelSerializer):
    # Declared, not derived from the model: integer ranges differ between SQLite and PostgreSQL
    # and the committed OpenAPI schema must not depend on the database.
    asked = serializers.IntegerField()
    distinct = serializers.IntegerField()
    routable = serializers.IntegerField()
    unroutable = serializers.IntegerField()
    providers = serializers.IntegerField()
    log_size = serializers.IntegerField()
    receipt = serializers.CharField(
        read_only=True, help_text="Compact JWS signing the two hashes and the counts"
    )

    class Meta:
        model = RoutingPlan
        fields = [
            "id",
            "created_at",
            "purpose",
            "asked",
            "distinct",
            "routable",
            "unroutable",
            "unroutable_by_reason",
            "providers",
            "request_sha256",
            "answer_sha256",
            "log_size",
            "receipt",
        ]


class PeerSignatureAuthentication(BaseAuthentication):
    """A member registry's RFC 9421 signature (no bearer token): its share of a plan."""

    def authenticate(self, request):
        meta = request.META
        if "HTTP_AUTHORIZATION" in meta or not (
            "HTTP_SIGNATURE_INPUT" in meta or "HTTP_VAULT_FEDERATION_ISSUER" in meta
        ):
            return None
        return PeerPrincipal(signatures.verify_request(request._request)), None


class LookupOrPeer(LookupScope):
    """An issuer's lookup token (refused as LookupScope refuses), or a member registry."""

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, PeerPrincipal) or super().has_permission(request, view)


class RoutingPlanCreateApi(APIView):
    """Resolve up to 100,000 vault numbers in one call, grouped by provider; in a federation,
    each home registry resolves its own numbers (one part per registry)."""

    authentication_classes = [PeerSignatureAuthentication, BearerTokenAuthentication]
    permission_classes = [LookupOrPeer]
    renderer_classes = [JSONRenderer, NDJSONRenderer]
    max_body_setting = "VAULT_PLAN_MAX_BODY"
    parser_classes: list = []  # the body is read once, as bytes, by read_numbers
    rate_limit = "token"  # numbers per token and minute (registry.ratelimit), documented 429

    @extend_schema(
        operation_id="routing_plans_create",
        parameters=[
            OpenApiParameter("purpose", str, enum=Purpose.values, description="Why the run is sent")
        ],
        request={
            "application/json": {"type": "array", "items": {"type": "string"}},
            "text/plain": {"type": "string", "description": "one number per line"},
            "text/csv": {"type": "string", "description": "one number per line"},
        },
        responses={
            200: OpenApiResponse(
                description="The plan: summary, groups per provider, unroutable numbers and "
                "duplicates. With `Accept: application/x-ndjson`, one JSON object per line."
            ),
            413: OpenApiResponse(description="Too many numbers, or body too large"),
            503: OpenApiResponse(description="No checkpoint signed yet (no_checkpoint)"),
        },
        examples=[
            OpenApiExample("numbers", value=["FR97 VLT1 0123 4567 8901", "fr97vlt1012345678901"])
        ],
    )
    @reads_from_replica
    def post(self, request):
        purpose = purpose_asked(request)
        body = request.body
        asked = read_numbers(body, request.content_type or "", settings.VAULT_PLAN_MAX_NUMBERS)
        peer = isinstance(request.user, PeerPrincipal)
        window = None if peer else ratelimit.charge_issuer(request.user, plan_numbers=len(asked))
        if not peer:
            metrics.observe_plan(str(request.user.issuer.pk), len(asked))
        document = None if peer else members.current()
        if document is not None:
            local, shares = federated.split(asked, document)
            if shares:
                return self.federated(request, purpose, body, local, shares, document)
        plan = build_plan(asked, purpose=purpose)
        if peer:  # a member's share: answered and signed, recorded by the asking registry
            answer = plan.as_json()
            receipt = receipt_for_plan(
                hashlib.sha256(body).hexdigest(),
                hashlib.sha256(answer).hexdigest(),
                plan.summary,
                plan.checkpoint,
                purpose,
            )
            return HttpResponse(
                answer,
                content_type="application/json",
                headers={"Vault-Registry-Receipt": receipt},
            )
        usage.record(
            request.user.issuer.pk,
            purpose,
            numbers=len(asked),
            unknown=plan.summary["unroutable_by_reason"].get(str(Reason.UNKNOWN), 0),
        )
        ndjson = NDJSON in request.META.get("HTTP_ACCEPT", "")
        chunks = list(plan.as_ndjson()) if ndjson else [plan.as_json()]
        answer = b"".join(chunks)
        record = routing_plan_record(
            plan=plan,
            issuer=request.user.issuer,
            token=request.user.token,
            purpose=purpose,
            request_body=body,
            answer=answer,
        )
        headers = {
            "Location": f"/api/v1/routing-plans/{record.id}",
            "Vault-Registry-Answer-SHA256": record.answer_sha256,
            # Signs the hashes of the bytes exchanged: it cannot travel inside the answer.
            "Vault-Registry-Receipt": receipt_for_plan(
                record.request_sha256,
                record.answer_sha256,
                plan.summary,
                plan.checkpoint,
                purpose,
            ),
            **(window.headers() if window is not None else {}),
        }
        if not ndjson:
            return HttpResponse(answer, content_type="application/json", headers=headers)
        # The answer was hashed and recorded before its first byte leaves: what is streamed is
        # exactly what the record proves.
        return StreamingHttpResponse(iter(chunks), content_type=NDJSON, headers=headers)

    def federated(self, request, purpose, body, local, shares, document):
        """The plan split by home registry: peers asked in parallel while the local share is
        resolved; one part per registry, each with its own receipt; then one receipt over the
        request and the merged answer."""
        issuer = str(request.user.issuer.pk)
        peers: list = []
        asking = threading.Thread(
            target=lambda: peers.extend(federated.fan_out(shares, document, issuer, purpose)),
            name="plan-fan-out",
            daemon=True,
        )
        asking.start()
        me = members.self_member(document)
        local_part = federated.Part(me.name, me.url, orjson.dumps(local), count=len(local))
        checkpoint = None
        if local:
            plan = build_plan(local, purpose=purpose)
            checkpoint = plan.checkpoint
            local_part.answer = plan.as_json()
            local_part.receipt = receipt_for_plan(
                hashlib.sha256(local_part.request).hexdigest(),
                hashlib.sha256(local_part.answer).hexdigest(),
                plan.summary,
                plan.checkpoint,
                purpose,
            )
        asking.join()
        header = {"checkpoint": checkpoint.note if checkpoint else None}
        answer = federated.merged(header, local_part, peers)
        summary = orjson.loads(answer)["summary"]
        headers = {
            "Vault-Registry-Answer-SHA256": hashlib.sha256(answer).hexdigest(),
            "Vault-Registry-Receipt": receipt_for_plan(
                hashlib.sha256(body).hexdigest(),
                hashlib.sha256(answer).hexdigest(),
                summary,
                checkpoint,
                purpose,
            ),
        }
        return HttpResponse(answer, content_type="application/json", headers=headers)


class RoutingPlanDetailApi(APIView):
    """The proof record of one of your plans: counts and SHA-256 of request and answer."""

    permission_classes = [LookupScope]

    @extend_schema(responses={200: RoutingPlanRecordSerializer})
    def get(self, request, pk):
        record = RoutingPlan.objects.filter(pk=pk, issuer=request.user.issuer).first()
        if record is None:
            raise NotFound(ErrorCode.NOT_FOUND, "You have no routing plan with this id.")
        data = RoutingPlanRecordSerializer(record).data
        summary = {
            key: data[key] for key in ("asked", "distinct", "routable", "unroutable", "providers")
        }
        checkpoint = Checkpoint.objects.filter(size=record.log_size).order_by("id").first()
        data["receipt"] = receipt_for_plan(
            data["request_sha256"], data["answer_sha256"], summary, checkpoint, record.purpose
        )
        return json_response(data)
