"""Routing plans over HTTP: POST a statement run, GET the plan's proof record later."""

from __future__ import annotations

import hashlib
import uuid

import orjson
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.authentication import BaseAuthentication
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from directory.api.purposes import purpose_asked
from directory.api.rendering import NDJSONRenderer, json_response
from directory.api.views import PeerPrincipal
from directory.federation import members, signatures, traffic
from directory.federation import plans as federated
from directory.models import Checkpoint, RoutingPlan
from directory.plans import NDJSON, build_plan, plan_record, read_numbers, routing_plan_record
from directory.receipts import receipt_for_plan
from directory.transparency.records import Reason
from registry import metrics, ratelimit, usage
from registry.api.auth import BearerTokenAuthentication, LookupScope
from registry.errors import ErrorCode, NotFound
from registry.models.organisations import Purpose
from registry.routers import reads_from_replica
from registry.services.common import timestamp


class RoutingPlanRecordSerializer(serializers.ModelSerializer):
    # Declared, not derived from the model: integer ranges differ between SQLite and PostgreSQL
    # and the committed OpenAPI schema must not depend on the database.
    asked = serializers.IntegerField()
    distinct = serializers.IntegerField()
    routable = serializers.IntegerField()
    unroutable = serializers.IntegerField()
    providers = serializers.IntegerField()
    log_size = serializers.IntegerField()
    registries = serializers.ListField(
        child=serializers.DictField(),
        help_text="A federated plan's parts: per registry, `count` numbers sent and the "
        "`answer_sha256` of its answer, or the `error` that lost them; empty when this registry "
        "resolved every number",
    )
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
            "registries",
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
    rate_limit = "token"  # numbers per token and minute (registry.ratelimit), documented 429
    parser_classes: list = []  # the body is read once, as bytes, by read_numbers

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
        ndjson = NDJSON in request.META.get("HTTP_ACCEPT", "")
        if peer:
            return self.share(request, purpose, body, asked, ndjson)
        window = ratelimit.charge_issuer(request.user, plan_numbers=len(asked))
        metrics.observe_plan(str(request.user.issuer.pk), len(asked))
        document = members.current()
        if document is not None:
            local, shares = federated.split(asked, document)
            if shares:
                return self.federated(
                    request, purpose, body, asked, local, shares, document, window, ndjson
                )
        plan = build_plan(asked, purpose=purpose)
        usage.record(
            request.user.issuer.pk,
            purpose,
            numbers=len(asked),
            unknown=plan.summary["unroutable_by_reason"].get(str(Reason.UNKNOWN), 0),
        )
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

    def share(self, request, purpose, body, asked, ndjson):
        """A member registry's share of its issuer's plan: answered and signed (JSON or NDJSON,
        as asked), recorded by the asking registry, not here."""
        traffic.count(request.user.peer.member.name, traffic.IN, traffic.PLAN, len(asked))
        plan = build_plan(asked, purpose=purpose)
        answer = b"".join(plan.as_ndjson()) if ndjson else plan.as_json()
        receipt = receipt_for_plan(
            hashlib.sha256(body).hexdigest(),
            hashlib.sha256(answer).hexdigest(),
            plan.summary,
            plan.checkpoint,
            purpose,
        )
        return HttpResponse(
            answer,
            content_type=NDJSON if ndjson else "application/json",
            headers={"Vault-Registry-Receipt": receipt},
        )

    def federated(self, request, purpose, body, asked, local, shares, document, window, ndjson):
        """The plan split by home registry: the peers asked in parallel while the local share
        is resolved; one part per registry, each with its own receipt. JSON: merged once every
        peer answered (or was given up), one receipt over the request and the whole answer.
        NDJSON: the local part streamed at once, each peer's as it arrives, the receipt on the
        last line. Recorded (``RoutingPlan``, with who answered what) and counted as usage."""
        issuer, token = request.user.issuer, request.user.token
        fan = federated.FanOut(shares, document, str(issuer.pk), purpose, ndjson=ndjson)
        me = members.self_member(document)
        local_part, checkpoint = _local_part(me, local, ndjson, purpose)
        plan_id, created_at = uuid.uuid4(), timezone.now()
        request_sha256 = hashlib.sha256(body).hexdigest()
        header = {
            "id": str(plan_id),
            "created_at": timestamp(created_at),
            "checkpoint": checkpoint.note if checkpoint else None,
        }

        def finish(parts: list, answer_sha256: str, summary: dict) -> str:
            plan_record(
                plan_id=plan_id,
                created_at=created_at,
                issuer=issuer,
                token=token,
                purpose=purpose,
                summary=summary,
                request_sha256=request_sha256,
                answer_sha256=answer_sha256,
                log_size=checkpoint.size if checkpoint else 0,
                registries=federated.registries(parts),
            )
            unknown = summary["unroutable_by_reason"].get(str(Reason.UNKNOWN), 0)
            usage.record(issuer.pk, purpose, numbers=len(asked), unknown=unknown)
            return receipt_for_plan(request_sha256, answer_sha256, summary, checkpoint, purpose)

        headers = {
            "Location": f"/api/v1/routing-plans/{plan_id}",
            **(window.headers() if window is not None else {}),
        }
        locals_ = [local_part] if local_part else []
        if ndjson:
            lines = federated.stream(header, me, locals_, fan, finish)
            return StreamingHttpResponse(lines, content_type=NDJSON, headers=headers)
        peers = fan.results()
        answer = federated.merged(header, locals_, peers)
        answer_sha256 = hashlib.sha256(answer).hexdigest()
        headers["Vault-Registry-Answer-SHA256"] = answer_sha256
        headers["Vault-Registry-Receipt"] = finish(
            [*locals_, *peers], answer_sha256, federated.summary([*locals_, *peers])
        )
        return HttpResponse(answer, content_type="application/json", headers=headers)


def _local_part(me, local: list[str], ndjson: bool, purpose: str):
    """This registry's share resolved as a plan of its own, with its receipt (None when every
    number asked belongs to peers), and the checkpoint it was resolved against."""
    if not local:
        return None, None
    part = federated.Part(me.name, me.url, orjson.dumps(local), count=len(local))
    plan = build_plan(local, purpose=purpose)
    part.answer = b"".join(plan.as_ndjson()) if ndjson else plan.as_json()
    part.summary = plan.summary
    part.receipt = receipt_for_plan(
        hashlib.sha256(part.request).hexdigest(),
        hashlib.sha256(part.answer).hexdigest(),
        plan.summary,
        plan.checkpoint,
        purpose,
    )
    return part, plan.checkpoint


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
