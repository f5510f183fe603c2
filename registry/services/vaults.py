"""Vault life cycle: allocate (the registry draws the number), hold, release, close."""

from __future__ import annotations

from enum import StrEnum

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from registry import numbers
from registry.errors import Conflict, ErrorCode, InvalidInput
from registry.models import (
    CodeVoidReason,
    LogKind,
    Provider,
    ServerCancelCause,
    Vault,
    VaultStatus,
)
from registry.services import transfers
from registry.services.common import (
    Actor,
    append_log,
    append_log_many,
    lock_active_provider,
    lock_open_vault,
    record_audit,
    refuse_registry_lock,
    vault_record,
)

MAX_BATCH = 10_000
_DRAW_ATTEMPTS = 20


class HoldKind(StrEnum):
    CLIENT = "client_hold"  # the provider stops delivery
    SERVER = "server_hold"  # the registry stops delivery


def _draw_free(count: int) -> list[str]:
    """``count`` new numbers not in use (closed ones included: numbers are never reused)."""
    country, allocator = settings.VAULT_COUNTRY, settings.VAULT_ALLOCATOR
    chosen: set[str] = set()
    for _ in range(_DRAW_ATTEMPTS):
        wanted = count - len(chosen)
        if wanted == 0:
            break
        drawn = {numbers.draw(country, allocator).value for _ in range(wanted)} - chosen
        taken = set(Vault.objects.filter(number__in=drawn).values_list("number", flat=True))
        chosen |= drawn - taken
    if len(chosen) < count:
        raise Conflict(ErrorCode.NUMBER_SPACE_EXHAUSTED, "Could not draw free vault numbers.")
    return sorted(chosen)


def _log_payload(vault: Vault, **extra: object) -> dict[str, object]:
    return {"vault": vault.number, "provider": str(vault.provider_id), **extra}


@transaction.atomic
def vault_allocate(*, actor: Actor, provider: Provider) -> Vault:
    """Allocate one vault number for a new holder of ``provider``."""
    provider = lock_active_provider(provider)
    now = timezone.now()
    for _ in range(_DRAW_ATTEMPTS):
        number = _draw_free(1)[0]
        try:
            with transaction.atomic():
                vault = Vault.objects.create(number=number, provider=provider, created_at=now)
            break
        except IntegrityError:  # drawn concurrently by another allocation: draw again
            continue
    else:
        raise Conflict(ErrorCode.NUMBER_SPACE_EXHAUSTED, "Could not draw a free vault number.")
    entry = append_log(
        LogKind.VAULT_ALLOCATED, _log_payload(vault), at=now, records=[vault_record(vault)]
    )
    vault.last_log_index = entry.sequence
    vault.save(update_fields=["last_log_index"])
    record_audit(actor, "vault:allocated", vault, at=now, log_entry=entry)
    return vault


@transaction.atomic
def vault_allocate_many(*, actor: Actor, provider: Provider, count: int) -> list[Vault]:
    """Allocate ``count`` numbers at once (one log entry each, one audit event for the batch)."""
    if not 1 <= count <= MAX_BATCH:
        raise InvalidInput(ErrorCode.VALIDATION_ERROR, f"count must be between 1 and {MAX_BATCH}.")
    provider = lock_active_provider(provider)
    now = timezone.now()
    vaults = [Vault(number=n, provider=provider, created_at=now) for n in _draw_free(count)]
    entries = append_log_many(
        [(LogKind.VAULT_ALLOCATED, _log_payload(v), [vault_record(v)]) for v in vaults], at=now
    )
    for vault, entry in zip(vaults, entries, strict=True):
        vault.last_log_index = entry.sequence
    Vault.objects.bulk_create(vaults, batch_size=2000)
    record_audit(
        actor,
        "vault:allocated_many",
        provider,
        at=now,
        data={"count": count, "first_log_sequence": entries[0].sequence},
    )
    return vaults


def _set_hold(actor: Actor, vault: Vault, kind: HoldKind, held: bool) -> Vault:
    vault = lock_open_vault(vault.pk)
    refuse_registry_lock(vault, actor)
    if getattr(vault, kind) == held:
        code, state = (
            (ErrorCode.ALREADY_HELD, "already has") if held else (ErrorCode.NOT_HELD, "has no")
        )
        raise Conflict(code, f"This vault {state} {kind}.")
    now = timezone.now()
    setattr(vault, kind, held)
    log_kind = LogKind.VAULT_HELD if held else LogKind.VAULT_RELEASED
    entry = append_log(
        log_kind, _log_payload(vault, hold=str(kind)), at=now, records=[vault_record(vault)]
    )
    vault.last_log_index = entry.sequence
    vault.save(update_fields=[kind, "last_log_index"])
    action = f"vault:{kind}" if held else f"vault:{kind}_released"
    record_audit(actor, action, vault, at=now, log_entry=entry)
    return vault


@transaction.atomic
def vault_hold(*, actor: Actor, vault: Vault, kind: HoldKind) -> Vault:
    """Stop delivery: ``client_hold`` set by its provider, ``server_hold`` by the registry."""
    return _set_hold(actor, vault, kind, True)


@transaction.atomic
def vault_release(*, actor: Actor, vault: Vault, kind: HoldKind) -> Vault:
    """Lift a hold set by ``vault_hold``."""
    return _set_hold(actor, vault, kind, False)


@transaction.atomic
def vault_close(*, actor: Actor, vault: Vault) -> Vault:
    """Close a vault for good. The number stays as a tombstone and is never reallocated.

    A pending transfer ends ``server_cancelled`` and the vault's transfer code is voided.
    """
    vault = lock_open_vault(vault.pk)
    refuse_registry_lock(vault, actor)
    now = timezone.now()
    transfers.cancel_pending_transfer(
        vault, actor=actor, cause=ServerCancelCause.VAULT_CLOSED, at=now
    )
    transfers.void_transfer_codes(vault, reason=CodeVoidReason.CLOSED, at=now)
    vault.status = VaultStatus.CLOSED
    vault.closed_at = now
    entry = append_log(
        LogKind.VAULT_CLOSED, _log_payload(vault), at=now, records=[vault_record(vault)]
    )
    vault.last_log_index = entry.sequence
    vault.save(update_fields=["status", "closed_at", "last_log_index"])
    record_audit(actor, "vault:closed", vault, at=now, log_entry=entry)
    return vault
