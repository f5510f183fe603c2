"""The API's request parsing and content negotiation: odd input is a 4xx, never a 500."""

from __future__ import annotations

from rest_framework import exceptions, parsers
from rest_framework.negotiation import DefaultContentNegotiation


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with too deep a nesting refused as malformed JSON.

    The standard library's decoder recurses once per level: ``[[[[…]]]]`` 1,000 levels deep
    (2 KB) exhausts the interpreter's stack and raised RecursionError, a 500. The decoder gives
    up at once on reaching the limit, so catching it costs nothing on ordinary bodies.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(
                "JSON parse error - the body is nested too deeply."
            ) from None


class ContentNegotiation(DefaultContentNegotiation):
    """``?format=`` naming no renderer of the view is 406 Not Acceptable, as an ``Accept``
    header would be, not DRF's 404 on a resource that exists."""

    def filter_renderers(self, renderers, format):
        matching = [renderer for renderer in renderers if renderer.format == format]
        if not matching:
            available = ", ".join(sorted({r.format for r in renderers if r.format}))
            raise exceptions.NotAcceptable(
                f"format={format!r} is not available here; available: {available}."
            )
        return matching
