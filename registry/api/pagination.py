"""Cursor pagination: stable under concurrent inserts, no COUNT(*) over large tables."""

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination as _CursorPagination

from registry.errors import ErrorCode, InvalidInput


class CursorPagination(_CursorPagination):
    ordering = "pk"
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request):
        # DRF falls back to the default on a page_size it cannot read (-1, abc, 0): the client
        # would silently get pages of another size than it asked for.
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= self.max_page_size:
            message = f"page_size must be a whole number from 1 to {self.max_page_size}."
            raise InvalidInput(
                ErrorCode.INVALID_PAGE_SIZE,
                message,
                extra={
                    "errors": [
                        {
                            "field": "page_size",
                            "code": ErrorCode.INVALID_PAGE_SIZE,
                            "message": message,
                        }
                    ]
                },
            )
        return int(raw)

    def decode_cursor(self, request):
        # DRF answers a garbled cursor with 404; it is a bad request, not a missing page.
        try:
            return super().decode_cursor(request)
        except NotFound:
            raise ValidationError(
                {"cursor": ["This cursor is not valid."]}, code="invalid_cursor"
            ) from None
