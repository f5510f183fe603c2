"""Federation admins' own accounts and second factors, as changed in the admin.

Django's admin saves users and TOTP devices itself; its hooks (``log_addition``,
``log_change``, ``log_deletions``) call these in the same transaction, so every change to who
can open the admin is in the audit trail with the acting admin's name. Never a password hash,
a key or a token: only what changed, by field name.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import models, transaction
from django.utils import timezone

from registry.models import AuditEvent
from registry.services.common import Actor, record_audit


def _describe(target: models.Model) -> dict[str, Any]:
    user = getattr(target, "user", None)
    if user is not None:  # a device
        return {"user": user.get_username(), "device": getattr(target, "name", "")}
    return {
        "username": target.get_username(),
        "is_staff": target.is_staff,
        "is_superuser": target.is_superuser,
        "is_active": target.is_active,
    }


@transaction.atomic
def staff_change_audit(
    *, actor: Actor, target: models.Model, change: str, message: Any = ""
) -> AuditEvent:
    """Record that ``actor`` added (``created``), changed or deleted a staff user or one of its
    OTP devices; ``message`` is the admin's change message (changed field names)."""
    kind = target._meta.model_name
    return record_audit(
        actor,
        f"{kind}:{change}",
        target,
        at=timezone.now(),
        data={**_describe(target), "change": message},
    )


@transaction.atomic
def staff_deletions_audit(*, actor: Actor, targets: Iterable[models.Model]) -> list[AuditEvent]:
    """``staff_change_audit`` of each deleted record, before the deletion (it names them)."""
    return [staff_change_audit(actor=actor, target=target, change="deleted") for target in targets]
