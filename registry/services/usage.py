"""Issuer usage: adding the workers' counts to ``IssuerUsage``, flagging enumeration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from registry.models import Issuer, IssuerUsage
from registry.services.common import Actor, record_audit

USAGE_ACTOR = Actor.system("usage")


@transaction.atomic
def usage_add(counts: Mapping[tuple[str, int, str], Sequence[int]]) -> int:
    """Add counts keyed (issuer id, minute as Unix time, purpose) to the table, one row per
    key (summed with what is there), then check the issuers touched for enumeration. Counts
    of issuers that do not exist are dropped."""
    known = {
        str(pk)
        for pk in Issuer.objects.filter(pk__in={key[0] for key in counts}).values_list(
            "pk", flat=True
        )
    }
    counts = {key: value for key, value in counts.items() if key[0] in known}
    for (issuer_id, minute, purpose), (lookups, numbers, unknown) in sorted(counts.items()):
        at = datetime.fromtimestamp(minute, tz=UTC)
        row = IssuerUsage.objects.filter(issuer_id=issuer_id, minute=at, purpose=purpose)
        added = {"lookups": F("lookups") + lookups, "numbers": F("numbers") + numbers}
        if row.update(**added, unknown=F("unknown") + unknown):
            continue
        try:
            with transaction.atomic():
                IssuerUsage.objects.create(
                    issuer_id=issuer_id,
                    minute=at,
                    purpose=purpose,
                    lookups=lookups,
                    numbers=numbers,
                    unknown=unknown,
                )
        except IntegrityError:  # created meanwhile by another flush
            row.update(**added, unknown=F("unknown") + unknown)
    for issuer_id in sorted({key[0] for key in counts}):
        issuer_check_enumeration(issuer_id=issuer_id)
    return len(counts)


def issuer_check_enumeration(*, issuer_id: str, now: datetime | None = None) -> bool:
    """Flag the issuer (``enumeration_suspected_at`` and an audit event) when, over the last
    VAULT_ENUMERATION_WINDOW_MINUTES, it asked at least VAULT_ENUMERATION_MIN_NUMBERS numbers
    and more than VAULT_ENUMERATION_UNKNOWN_PERCENT % of them were unknown. Flagged once, until
    an admin clears the field. Returns whether it was flagged now."""
    now = now or timezone.now()
    since = now - timedelta(minutes=settings.VAULT_ENUMERATION_WINDOW_MINUTES)
    totals = IssuerUsage.objects.filter(issuer_id=issuer_id, minute__gte=since).aggregate(
        numbers=Sum("numbers"), unknown=Sum("unknown")
    )
    numbers, unknown = totals["numbers"] or 0, totals["unknown"] or 0
    if numbers < settings.VAULT_ENUMERATION_MIN_NUMBERS:
        return False
    if unknown * 100 <= numbers * settings.VAULT_ENUMERATION_UNKNOWN_PERCENT:
        return False
    issuer = Issuer.objects.select_for_update(no_key=True).get(pk=issuer_id)
    if issuer.enumeration_suspected_at is not None:
        return False
    issuer.enumeration_suspected_at = now
    issuer.save(update_fields=["enumeration_suspected_at"])
    record_audit(
        USAGE_ACTOR,
        "usage:enumeration_suspected",
        issuer,
        at=now,
        data={
            "window_minutes": settings.VAULT_ENUMERATION_WINDOW_MINUTES,
            "numbers": numbers,
            "unknown": unknown,
        },
    )
    return True
