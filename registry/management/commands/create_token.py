"""Create an API token for an active provider or issuer and print it once."""

from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand, CommandError

from registry.errors import DomainError
from registry.models import Issuer, Provider, TokenScope
from registry.services.common import Actor
from registry.services.tokens import token_create

_OWNERS = {TokenScope.PROVIDER: Provider, TokenScope.LOOKUP: Issuer}


def find_organisation(scope: str, wanted: str) -> Provider | Issuer:
    """The provider (scope ``provider``) or issuer (scope ``lookup``) by id or exact legal name."""
    model = _OWNERS[TokenScope(scope)]
    try:
        found = list(model.objects.filter(pk=uuid.UUID(wanted)))
    except ValueError:
        found = list(model.objects.filter(legal_name__iexact=wanted.strip())[:2])
    kind = model._meta.verbose_name
    if not found:
        raise CommandError(f"No {kind} has the id or legal name {wanted!r}.")
    if len(found) > 1:
        raise CommandError(f"Several {kind}s are named {wanted!r}: give the id.")
    return found[0]


class Command(BaseCommand):
    help = (
        "Create an API token for an active organisation (scope provider: a provider; scope "
        "lookup: an issuer), through the same service as the admin. The token is printed once, "
        "on the last line, and never stored nor shown again."
    )

    def add_arguments(self, parser):
        parser.add_argument("organisation", help="the organisation's id or exact legal name")
        parser.add_argument("--scope", required=True, choices=[s.value for s in TokenScope])
        parser.add_argument("--name", default="", help="what the token is for")
        parser.add_argument("--days", type=int, default=90, help="lifetime in days (default 90)")

    def handle(self, *args, organisation: str, scope: str, name: str, days: int, **options):
        owner = find_organisation(scope, organisation)
        try:
            token, value = token_create(
                actor=Actor.system("create_token"),
                owner=owner,
                name=name,
                expires_in_days=days,
            )
        except DomainError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from None
        self.stderr.write(
            f"Token {token.name!r} for {owner.legal_name} (scope {token.scope}), "
            f"expires {token.expires_at:%Y-%m-%d %H:%M} UTC. Keep it now: it is not shown again."
        )
        self.stdout.write(value)
