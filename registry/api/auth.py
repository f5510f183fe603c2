"""Bearer-token authentication and the scope permissions of the API."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from registry.errors import ErrorCode
from registry.models import ApiToken, Issuer, Provider, TokenScope
from registry.services.common import Actor
from registry.services.tokens import hash_token

# Recording every use would turn each lookup into a write; a minute's precision is enough.
LAST_USED_PRECISION = timedelta(minutes=1)


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
    """``Authorization: Bearer vr_…``; one indexed query, plus a rare last-use update."""

    keyword = b"bearer"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
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
        token = (
            ApiToken.objects.select_related("provider", "issuer")
            .filter(key_hash=hash_token(value))
            .first()
        )
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
