"""The transparency log over HTTP: checkpoint, C2SP tiles, proofs, history and public keys.

Tiles follow c2sp.org/tlog-tiles: ``tile/<L>/<N>[.p/<W>]`` holds the stored hashes of tree level
8·L, ``tile/entries/<N>[.p/<W>]`` the entries (each a big-endian uint16 length, then the bytes).
Full tiles never change: they are served with a year of immutable caching and an ETag.
"""

from __future__ import annotations

import base64
import hashlib
import re

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from directory import checkpoints, history, keys, tree
from directory.transparency import note
from directory.transparency.tiles import TILE_HEIGHT, TILE_WIDTH, join_bundle
from registry.api.auth import Principal
from registry.api.throttles import AddressRateThrottle
from registry.errors import ErrorCode, InvalidInput, NotFound
from registry.federation import country, known_allocators, parse_number
from registry.models import LogEntry
from registry.routers import reads_from_replica

MAX_TILE_LEVEL = 63 // TILE_HEIGHT
IMMUTABLE = "public, max-age=31536000, immutable"
PARTIAL = "public, max-age=10"

_TILE_INDEX = re.compile(r"((?:x\d{3}/)*)(\d{3})(?:\.p/([1-9]\d{0,2}))?")


class IsParticipant(BasePermission):
    """Any provider or issuer token, whatever its scope: the log is for every participant."""

    message = "The log is served to the federation's providers and issuers."

    def has_permission(self, request, view) -> bool:
        return isinstance(request.user, Principal)


class _AnyAccept(BaseContentNegotiation):
    """Binary and text answers ignore Accept; errors are always problem+json."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class _LogApi(APIView):
    """The log is public (no token): witnesses, mirrors and holders' monitors must read it, and
    it holds nothing that is not public by design (vault numbers and routing, no personal
    data). So full tiles are cacheable by anyone, with nothing to vary on."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AddressRateThrottle]  # per client address: VAULT_RATE_PUBLIC_PER_MINUTE
    renderer_classes = [JSONRenderer]
    content_negotiation_class = _AnyAccept


def parse_tile_index(path: str) -> tuple[int, int | None]:
    """``x001/x234/067[.p/W]`` → (1234067, W or None); refuses non-canonical encodings."""
    match = _TILE_INDEX.fullmatch(path)
    if match is None:
        raise InvalidInput(
            ErrorCode.INVALID_TILE_PATH, "Malformed tile index (c2sp.org/tlog-tiles)."
        )
    groups = [g[1:] for g in match.group(1).split("/") if g] + [match.group(2)]
    if len(groups) > 1 and groups[0] == "000":
        raise InvalidInput(ErrorCode.INVALID_TILE_PATH, "Tile index with a leading zero group.")
    width = int(match.group(3)) if match.group(3) else None
    if width is not None and width >= TILE_WIDTH:
        raise InvalidInput(ErrorCode.INVALID_TILE_PATH, "A partial tile is 1 to 255 wide.")
    return int("".join(groups)), width


def _binary(request, content: bytes, full: bool) -> HttpResponse:
    etag = f'"{hashlib.sha256(content).hexdigest()[:32]}"'
    if request.headers.get("If-None-Match") == etag:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(content, content_type="application/octet-stream")
    response["ETag"] = etag
    response["Cache-Control"] = IMMUTABLE if full else PARTIAL
    return response


_TILE_RESPONSES = {
    (200, "application/octet-stream"): OpenApiTypes.BINARY,
    400: OpenApiResponse(description="Malformed tile path (invalid_tile_path)"),
    404: OpenApiResponse(description="The tile does not exist yet (tile_not_found)"),
}


class LogCheckpointApi(_LogApi):
    """The latest signed checkpoint (C2SP signed note), as text."""

    @extend_schema(
        responses={
            (200, "text/plain"): OpenApiTypes.STR,
            404: OpenApiResponse(description="No checkpoint yet (no_checkpoint)"),
        }
    )
    @reads_from_replica
    def get(self, request):
        checkpoint = checkpoints.latest()
        if checkpoint is None:
            raise NotFound(ErrorCode.NO_CHECKPOINT, "The log has no checkpoint yet.")
        response = HttpResponse(checkpoint.note, content_type="text/plain; charset=utf-8")
        response["Cache-Control"] = "no-cache"
        return response


class LogHashTileApi(_LogApi):
    """A tile of stored tree hashes: level ``L`` holds the hashes of tree level 8·L."""

    @extend_schema(
        operation_id="log_tile_hashes",
        parameters=[
            OpenApiParameter("level", int, OpenApiParameter.PATH),
            OpenApiParameter(
                "index", str, OpenApiParameter.PATH, description="x001/x234/067 or 067.p/12"
            ),
        ],
        responses=_TILE_RESPONSES,
    )
    @reads_from_replica
    def get(self, request, level: int, index: str):
        if level > MAX_TILE_LEVEL:
            raise InvalidInput(ErrorCode.INVALID_TILE_PATH, "Tile level out of range.")
        number, width = parse_tile_index(index)
        count = width or TILE_WIDTH
        hashes = tree.level_hashes(level * TILE_HEIGHT, number * TILE_WIDTH, count)
        if len(hashes) != count:
            raise NotFound(ErrorCode.TILE_NOT_FOUND, "This tile does not exist (yet).")
        return _binary(request, b"".join(hashes), width is None)


class LogEntryTileApi(_LogApi):
    """A bundle of up to 256 log entries, each as a big-endian uint16 length and its bytes."""

    @extend_schema(
        operation_id="log_tile_entries",
        parameters=[
            OpenApiParameter(
                "index", str, OpenApiParameter.PATH, description="x001/x234/067 or 067.p/12"
            )
        ],
        responses=_TILE_RESPONSES,
    )
    @reads_from_replica
    def get(self, request, index: str):
        number, width = parse_tile_index(index)
        count = width or TILE_WIDTH
        start = number * TILE_WIDTH
        bodies = list(
            LogEntry.objects.filter(sequence__gte=start, sequence__lt=start + count)
            .order_by("sequence")
            .values_list("body", flat=True)
        )
        if len(bodies) != count:
            raise NotFound(ErrorCode.TILE_NOT_FOUND, "This tile does not exist (yet).")
        return _binary(request, join_bundle(bodies), width is None)


def _int_param(request, name: str, code: ErrorCode) -> int:
    raw = request.query_params.get(name, "")
    # ASCII only: str.isdigit() also accepts '²' (int() refuses it) and '٣' (int() reads 3).
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        raise InvalidInput(code, f"{name} must be a non-negative integer.")
    return int(raw)


def _b64(digests: list[bytes]) -> list[str]:
    return [base64.b64encode(d).decode() for d in digests]


class LogInclusionProofApi(_LogApi):
    """Inclusion proof of entry ``index`` in the tree of ``size`` entries (RFC 9162)."""

    @extend_schema(
        operation_id="log_proof_inclusion",
        parameters=[
            OpenApiParameter("index", int, required=True),
            OpenApiParameter("size", int, required=True),
        ],
        responses={
            200: OpenApiResponse(description="{index, size, leaf_hash, proof: [base64]}"),
            400: OpenApiResponse(description="invalid_leaf_index or invalid_tree_size"),
        },
    )
    @reads_from_replica
    def get(self, request):
        index = _int_param(request, "index", ErrorCode.INVALID_LEAF_INDEX)
        size = _int_param(request, "size", ErrorCode.INVALID_TREE_SIZE)
        if not 0 < size <= checkpoints.log_size():
            raise InvalidInput(
                ErrorCode.INVALID_TREE_SIZE, "size must be between 1 and the log's size."
            )
        if index >= size:
            raise InvalidInput(ErrorCode.INVALID_LEAF_INDEX, "index must be smaller than size.")
        leaf = tree.level_hashes(0, index, 1)[0]
        return JsonResponse(
            {
                "index": index,
                "size": size,
                "leaf_hash": base64.b64encode(leaf).decode(),
                "proof": _b64(tree.inclusion_proof(index, size)),
            }
        )


class LogConsistencyProofApi(_LogApi):
    """Consistency proof between the trees of ``from`` and ``to`` entries (RFC 9162)."""

    @extend_schema(
        operation_id="log_proof_consistency",
        parameters=[
            OpenApiParameter("from", int, required=True),
            OpenApiParameter("to", int, required=True),
        ],
        responses={
            200: OpenApiResponse(description="{from, to, proof: [base64]}"),
            400: OpenApiResponse(description="invalid_tree_size"),
        },
    )
    @reads_from_replica
    def get(self, request):
        first = _int_param(request, "from", ErrorCode.INVALID_TREE_SIZE)
        second = _int_param(request, "to", ErrorCode.INVALID_TREE_SIZE)
        if not 0 < first <= second <= checkpoints.log_size():
            raise InvalidInput(
                ErrorCode.INVALID_TREE_SIZE, "Need 0 < from <= to <= the log's size."
            )
        return JsonResponse(
            {"from": first, "to": second, "proof": _b64(tree.consistency_proof(first, second))}
        )


class VaultHistoryApi(_LogApi):
    """The routing changes of one vault, from the log (oldest first): an index of the public
    log, served to participants (a token of any scope)."""

    authentication_classes = APIView.authentication_classes
    permission_classes = [IsParticipant]

    @extend_schema(
        operation_id="vault_history",
        responses={
            200: OpenApiResponse(
                description="{number, entries: [{log_index, kind, at, provider, entry}]}"
            ),
            400: OpenApiResponse(description="Malformed number"),
            404: OpenApiResponse(description="No log entry names this vault"),
        },
    )
    @reads_from_replica
    def get(self, request, number: str):
        parsed = parse_number(number)
        entries = history.vault_history(parsed.value)
        if not entries:
            raise NotFound(ErrorCode.VAULT_NOT_FOUND, "No vault has this number.")
        return JsonResponse({"number": parsed.value, "entries": entries})


class WellKnownApi(APIView):
    """The registry's public keys (log and receipt, current and retired): no authentication."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        operation_id="well_known_vault_registry",
        responses={200: OpenApiResponse(description="Public keys with their validity windows")},
    )
    def get(self, request):
        manifest = keys.public_manifest()
        log_keys = [
            entry
            | {
                "algorithm": "Ed25519",
                "vkey": _vkey(entry),
            }
            for entry in manifest.get(keys.Purpose.LOG, [])
        ]
        receipt_keys = [
            entry
            | {
                "alg": "Ed25519",
                "jwk": {
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": _b64url(entry["public_key"]),
                    "kid": entry["kid"],
                    "alg": "Ed25519",
                    "use": "sig",
                },
            }
            for entry in manifest.get(keys.Purpose.RECEIPT, [])
        ]
        response = JsonResponse(
            {
                "origin": settings.VAULT_LOG_ORIGIN,
                "country": country(),
                "allocators": sorted(known_allocators()),
                "log_keys": log_keys,
                "receipt_keys": receipt_keys,
            }
        )
        response["Cache-Control"] = "public, max-age=300"
        return response


def _b64url(standard: str) -> str:
    return base64.urlsafe_b64encode(base64.b64decode(standard)).rstrip(b"=").decode()


def _vkey(entry: dict) -> str:
    return note.verifier_key(entry["name"], base64.b64decode(entry["public_key"]))
