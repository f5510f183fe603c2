"""Fast JSON for the read side's answers (orjson: RFC 3339 times ending in Z)."""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpResponse
from rest_framework.renderers import BaseRenderer

JSON_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=JSON_OPTIONS)


def json_response(value: Any, status: int = 200, **headers: str) -> HttpResponse:
    response = HttpResponse(dumps(value), status=status, content_type="application/json")
    for name, header in headers.items():
        response[name] = header
    return response


class NDJSONRenderer(BaseRenderer):
    """Lets ``Accept: application/x-ndjson`` through content negotiation; views that stream
    NDJSON build their lines themselves, so this only ever renders an error as one line."""

    media_type = "application/x-ndjson"
    format = "ndjson"

    def render(self, data: Any, accepted_media_type=None, renderer_context=None) -> bytes:
        return dumps(data) + b"\n"
