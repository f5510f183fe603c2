"""Bearer-token authentication and the scope permissions of the API."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication
from rest_framework.permissions import BasePermission

from registry.errors import ErrorCode
from registry.models import ApiToken, Issuer, Provider, TokenScope
from registry.services.common import Actor
from registry.services.tokens import hash_token

# Recording every use would turn each lookup into a write; a minute's precision is enough.
LAST_USED_PRECISION = timedelta(minutes=1)


class _TokenCache:
    """Tokens recently checked by this process, so a lookup costs no extra round trip.

    An entry lives VAULT_TOKEN_CACHE_SECONDS at most: a revocation, an expiry or a suspension of
    the owner takes effect within that delay on every gunicorn worker. 0 turns the cache off.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, ApiToken]] = {}
        self._lock = threading.Lock()

    def get(self, key_hash: str) -> ApiToken | None:
        entry = self._entries.get(key_hash)
        if entry is not None and time.monotonic() < entry[0]:
            return entry[1]
        return None

    def put(self, key_hash: str, token: ApiToken) -> None:
        seconds = settings.VAULT_TOKEN_CACHE_SECONDS
        if seconds <= 0:
            return
        with self._lock:
            if len(self._entries) > 10_000:
                self._entries.clear()
            self._entries[key_hash] = (time.monotonic() + seconds, token)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


token_cache = _TokenCache()


class Principal:
    """The authenticated caller: one provider or one issuer, through one token."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, token: ApiToken):
        self.token = token
        self.scope = token.scope
        self.provider: Provider | None = token.provider
        self.issuer: Issuer | None = token.issuer

    @property
    def actor(self) -> Actor:
        return Actor.for_token(self.token)

    def __str__(self) -> str:
        return self.actor.label


class BearerTokenAuthentication(BaseAuthentication):
    """``Authorization: Bearer vr_…``; one indexed query at most (tokens are cached a few
    seconds per process), plus a last-use update once a minute."""

    keyword = b"bearer"

    def authenticate(self, request):
        # Straight from META: ``request.headers`` would build a mapping of every header first.
        header = request.META.get("HTTP_AUTHORIZATION", b"")
        if isinstance(header, str):
            header = header.encode("iso-8859-1")
        header = header.split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "The Authorization header must be 'Bearer <token>'.", code=ErrorCode.INVALID_TOKEN
            )
        try:
            value = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(
                "Invalid token.", code=ErrorCode.INVALID_TOKEN
            ) from None
        key_hash = hash_token(value)
        token = token_cache.get(key_hash)
        if token is None:
            token = (
                ApiToken.objects.select_related("provider", "issuer")
                .filter(key_hash=key_hash)
                .first()
            )
            if token is not None:
                token_cache.put(key_hash, token)
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.", code=ErrorCode.INVALID_TOKEN)
        now = timezone.now()
        if token.revoked_at is not None:
            raise exceptions.AuthenticationFailed(
                "This token was revoked.", code=ErrorCode.TOKEN_REVOKED
            )
        if token.expires_at <= now:
            raise exceptions.AuthenticationFailed(
                "This token has expired.", code=ErrorCode.TOKEN_EXPIRED
            )
        if not token.owner.is_active:
            raise exceptions.PermissionDenied(
                f"Your organisation is {token.owner.status}: its tokens cannot be used.",
                code=ErrorCode.ORGANISATION_INACTIVE,
            )
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_PRECISION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
            token.last_used_at = now
        return Principal(token), token

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="vault-registry"'


class _ScopePermission(BasePermission):
    scope: str = ""
    code = ErrorCode.INSUFFICIENT_SCOPE

    @property
    def message(self) -> str:
        return f"This operation needs a token with the '{self.scope}' scope."

    def has_permission(self, request, view) -> bool:
        principal = request.user
        return isinstance(principal, Principal) and principal.scope == self.scope


class ProviderScope(_ScopePermission):
    scope = TokenScope.PROVIDER


class LookupScope(_ScopePermission):
    scope = TokenScope.LOOKUP
