"""The state map over HTTP: records and their multiproof at a checkpoint's size.

Public, like the log it is derived from: witnesses check a new checkpoint's map root with it
(the touched keys' old values), the verifying client checks a routing plan's placements with it,
and holders' and providers' monitors compare what is answered online with their mirror.
"""

from __future__ import annotations

import base64
import re

import orjson
from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from directory import state
from directory.models import Checkpoint
from directory.transparency import records as rec
from registry.api.throttles import AddressRateThrottle
from registry.errors import ErrorCode, InvalidInput
from registry.routers import reads_from_replica

_KEY = re.compile(
    r"vault:[A-Z]{2}[0-9]{2}[A-Z][A-Z0-9]{3}[0-9]{12}"
    r"|provider:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
)


def _request(body: bytes) -> tuple[int, list[str], bool]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(ErrorCode.MALFORMED_JSON, f"The body is not JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise InvalidInput(ErrorCode.BAD_REQUEST, 'Send {"size": …, "keys": […]}.')
    size, keys = data.get("size"), data.get("keys")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInput(ErrorCode.INVALID_TREE_SIZE, "size must be a checkpoint's log size.")
    limit = 2 * settings.VAULT_PLAN_MAX_NUMBERS
    if not isinstance(keys, list) or not keys or len(keys) > limit:
        raise InvalidInput(ErrorCode.INVALID_STATE_KEY, f"keys must list 1 to {limit} keys.")
    for key in keys:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise InvalidInput(
                ErrorCode.INVALID_STATE_KEY,
                "A key is vault:<normalised number> or provider:<id>.",
                extra={"key": key if isinstance(key, str) else None},
            )
    return size, list(dict.fromkeys(keys)), data.get("with_providers") is True


class StateProofsApi(APIView):
    """Records of map keys at a checkpoint, with one multiproof of them all."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AddressRateThrottle]  # per client address: VAULT_RATE_PUBLIC_PER_MINUTE
    parser_classes: list = []  # the body is read once, as bytes
    max_body_setting = "VAULT_PLAN_MAX_BODY"

    @extend_schema(
        operation_id="state_proofs",
        request={
            "application/json": {
                "type": "object",
                "properties": {
                    "size": {"type": "integer"},
                    "keys": {"type": "array", "items": {"type": "string"}},
                    "with_providers": {"type": "boolean"},
                },
            }
        },
        responses={
            200: OpenApiResponse(
                description="{size, map_root, proof (base64 multiproof), records: {key: "
                "record or null}}; with_providers adds the record of each found vault's provider"
            ),
            400: OpenApiResponse(
                description="invalid_state_key, invalid_tree_size, not_a_checkpoint_size"
            ),
        },
        examples=[OpenApiExample("keys", value={"size": 42, "keys": ["vault:FR97VLT1..."]})],
    )
    @reads_from_replica
    def post(self, request):
        size, keys, with_providers = _request(request.body)
        checkpoint = Checkpoint.objects.filter(size=size).first()
        if checkpoint is None:
            raise InvalidInput(
                ErrorCode.NOT_A_CHECKPOINT_SIZE, "No checkpoint was signed at this log size."
            )
        found = state.records_at(keys, size)
        if with_providers:
            vault_records = [
                orjson.loads(found[k]) for k in keys if k.startswith("vault:") and k in found
            ]
            extra = sorted({rec.provider_key(r["provider"]) for r in vault_records} - set(keys))
            found |= state.records_at(extra, size)
            keys += extra
        proof = state.prove(keys, size)
        # The records are spliced in as stored (canonical JSON), not decoded and encoded again.
        members = b",".join(orjson.dumps(key) + b":" + found.get(key, b"null") for key in keys)
        body = (
            b'{"size":'
            + str(size).encode()
            + b',"map_root":'
            + orjson.dumps(base64.b64encode(bytes(checkpoint.map_root)).decode())
            + b',"proof":'
            + orjson.dumps(base64.b64encode(proof).decode())
            + b',"records":{'
            + members
            + b"}}"
        )
        return HttpResponse(body, content_type="application/json")
