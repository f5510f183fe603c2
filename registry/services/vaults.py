"""Vault life cycle: allocate (the registry draws the number), hold, release, close."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from registry import numbers
from registry.errors import Conflict, ErrorCode, Forbidden, InvalidInput
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
    reason_data,
    record_audit,
    record_audit_many,
    refuse_registry_lock,
    required_reason,
    vault_record,
)

MAX_BATCH = 10_000  # numbers allocated, or vaults changed, in one call
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


def _chosen_number(number: str) -> str:
    """A number given rather than drawn (``load_demo``'s documented example): well formed, of
    this registry's country and allocator."""
    try:
        parsed = numbers.parse(number, [settings.VAULT_ALLOCATOR], settings.VAULT_COUNTRY)
    except numbers.InvalidNumber as exc:
        raise InvalidInput(exc.code, exc.message) from exc
    return parsed.value


@transaction.atomic
def vault_allocate(*, actor: Actor, provider: Provider, number: str | None = None) -> Vault:
    """Allocate one vault number for a new holder of ``provider``: drawn at random, or the
    given ``number`` (only the demo names one, the README's example; the API never does), which
    must never have been used (``number_taken`` otherwise, closed numbers included)."""
    provider = lock_active_provider(provider)
    now = timezone.now()
    if number is not None:
        number = _chosen_number(number)
        try:
            with transaction.atomic():
                vault = Vault.objects.create(number=number, provider=provider, created_at=now)
        except IntegrityError as exc:
            raise Conflict(ErrorCode.NUMBER_TAKEN, "This vault number is already used.") from exc
    else:
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


def _set_hold(actor: Actor, vault: Vault, kind: HoldKind, held: bool, reason: str) -> Vault:
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
    record_audit(actor, action, vault, at=now, log_entry=entry, data=reason_data(reason))
    return vault


@transaction.atomic
def vault_hold(*, actor: Actor, vault: Vault, kind: HoldKind, reason: str = "") -> Vault:
    """Stop delivery: ``client_hold`` set by its provider, ``server_hold`` by the registry.
    The reason, if any, is kept in the audit trail."""
    return _set_hold(actor, vault, kind, True, reason)


@transaction.atomic
def vault_release(*, actor: Actor, vault: Vault, kind: HoldKind, reason: str = "") -> Vault:
    """Lift a hold set by ``vault_hold``."""
    return _set_hold(actor, vault, kind, False, reason)


@transaction.atomic
def vault_close(*, actor: Actor, vault: Vault, reason: str = "") -> Vault:
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
    record_audit(actor, "vault:closed", vault, at=now, log_entry=entry, data=reason_data(reason))
    return vault


# --- Many vaults at once (the admin's bulk actions) -----------------------------------------------


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What a change of many vaults did: how many changed, and how many were refused, counted
    by the error code a single change would have answered."""

    changed: int
    refused: dict[str, int] = field(default_factory=dict)


def lock_many(vaults: Iterable[str] | models.QuerySet) -> list[Vault]:
    """Read vaults (numbers, or a query of vaults) under row locks, in number order so that two
    batches never wait on each other; refuse more than ``MAX_BATCH``."""
    if isinstance(vaults, models.QuerySet):
        vaults = vaults.order_by().values("pk")
    rows = list(Vault.objects.select_for_update().filter(pk__in=vaults).order_by("number"))
    if len(rows) > MAX_BATCH:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            f"At most {MAX_BATCH} vaults change in one batch; this one has {len(rows)}.",
        )
    return rows


def _refusal(vault: Vault, actor: Actor) -> str | None:
    if vault.status == VaultStatus.CLOSED:
        return ErrorCode.VAULT_CLOSED
    if vault.registry_lock and actor.user is None:
        return ErrorCode.REGISTRY_LOCKED
    return None


def _log_and_audit_many(
    actor: Actor, changed: list[Vault], kind: str, action: str, *, at, data, fields, **extra
) -> None:
    entries = append_log_many(
        [(kind, _log_payload(v, **extra), [vault_record(v)]) for v in changed], at=at
    )
    for vault, entry in zip(changed, entries, strict=True):
        vault.last_log_index = entry.sequence
    Vault.objects.bulk_update(changed, [*fields, "last_log_index"], batch_size=1000)
    record_audit_many(actor, action, changed, at=at, data=data, log_entries=entries)


def _set_hold_many(actor: Actor, vaults, kind: HoldKind, held: bool, reason: str) -> BatchOutcome:
    reason = required_reason(reason)
    refused: Counter[str] = Counter()
    changed = []
    for vault in lock_many(vaults):
        refusal = _refusal(vault, actor)
        if refusal is None and getattr(vault, kind) == held:
            refusal = ErrorCode.ALREADY_HELD if held else ErrorCode.NOT_HELD
        if refusal:
            refused[str(refusal)] += 1
            continue
        setattr(vault, kind, held)
        changed.append(vault)
    if changed:
        _log_and_audit_many(
            actor,
            changed,
            LogKind.VAULT_HELD if held else LogKind.VAULT_RELEASED,
            f"vault:{kind}" if held else f"vault:{kind}_released",
            at=timezone.now(),
            data={"reason": reason},
            fields=[str(kind)],
            hold=str(kind),
        )
    return BatchOutcome(len(changed), dict(refused))


@transaction.atomic
def vault_hold_many(*, actor: Actor, vaults, kind: HoldKind, reason: str) -> BatchOutcome:
    """``vault_hold`` for many vaults (numbers or a query) in one transaction, with a reason:
    one log entry and one audit event per vault held; the others are counted as refused."""
    return _set_hold_many(actor, vaults, kind, True, reason)


@transaction.atomic
def vault_release_many(*, actor: Actor, vaults, kind: HoldKind, reason: str) -> BatchOutcome:
    """``vault_release`` for many vaults in one transaction, with a reason."""
    return _set_hold_many(actor, vaults, kind, False, reason)


@transaction.atomic
def vault_close_many(*, actor: Actor, vaults, reason: str) -> BatchOutcome:
    """``vault_close`` for many vaults in one transaction, with a reason: pending transfers end
    ``server_cancelled``, codes are voided, each vault gets its log entry and audit event."""
    reason = required_reason(reason)
    now = timezone.now()
    refused: Counter[str] = Counter()
    changed = []
    for vault in lock_many(vaults):
        refusal = _refusal(vault, actor)
        if refusal:
            refused[str(refusal)] += 1
            continue
        if vault.pending_transfer:  # few: each ends with its own entry and messages
            transfers.cancel_pending_transfer(
                vault, actor=actor, cause=ServerCancelCause.VAULT_CLOSED, at=now
            )
        vault.status = VaultStatus.CLOSED
        vault.closed_at = now
        changed.append(vault)
    if changed:
        transfers.void_transfer_codes_many(changed, reason=CodeVoidReason.CLOSED, at=now)
        _log_and_audit_many(
            actor,
            changed,
            LogKind.VAULT_CLOSED,
            "vault:closed",
            at=now,
            data={"reason": reason},
            fields=["status", "closed_at"],
        )
    return BatchOutcome(len(changed), dict(refused))


@transaction.atomic
def vault_set_registry_lock_many(
    *, actor: Actor, vaults, locked: bool, reason: str
) -> BatchOutcome:
    """``transfers.vault_set_registry_lock`` for many vaults in one transaction: federation
    admins only, with a reason; setting the lock cancels each vault's pending transfer."""
    if actor.user is None:
        raise Forbidden(
            ErrorCode.PERMISSION_DENIED, "Only federation admins set or clear registry_lock."
        )
    reason = required_reason(reason)
    now = timezone.now()
    refused: Counter[str] = Counter()
    changed = []
    for vault in lock_many(vaults):
        if vault.status == VaultStatus.CLOSED:
            refused[str(ErrorCode.VAULT_CLOSED)] += 1
            continue
        if vault.registry_lock == locked:
            refused[str(ErrorCode.ALREADY_LOCKED if locked else ErrorCode.NOT_LOCKED)] += 1
            continue
        vault.registry_lock = locked
        if locked and vault.pending_transfer:
            transfers.cancel_pending_transfer(
                vault, actor=actor, cause=ServerCancelCause.REGISTRY_LOCK, at=now, note=reason
            )
        changed.append(vault)
    if changed:
        _log_and_audit_many(
            actor,
            changed,
            LogKind.VAULT_REGISTRY_LOCK,
            "vault:registry_lock" if locked else "vault:registry_lock_cleared",
            at=now,
            data={"reason": reason},
            fields=["registry_lock"],
            set=locked,
        )
    return BatchOutcome(len(changed), dict(refused))
