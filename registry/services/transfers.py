"""Portability (DESIGN.md §5): transfer codes, transfers and their outcomes, transfer locks.

The holder asks their provider (the losing side) for a code; the gaining provider requests the
transfer with it; the losing provider approves or rejects with an enumerated reason, the gaining
one may cancel, and the registry approves when the deadline passes or cancels for an admin, a
registry lock or a closure.

Concurrency: every transition locks the two providers' rows, the vault row, then the transfer
row (the lock order of ``registry.services.common``, so two writes cannot deadlock), and
re-reads the state under the lock; a partial unique
constraint keeps a second pending transfer of a vault out of the database whatever happens. On
SQLite the IMMEDIATE transactions serialise writers instead of the row locks.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from registry import transfer_codes, workdays
from registry.errors import (
    Conflict,
    DomainError,
    ErrorCode,
    Forbidden,
    InvalidInput,
    NotFound,
)
from registry.models import (
    CodeVoidReason,
    LogKind,
    MessageKind,
    OrganisationStatus,
    Provider,
    RejectionReason,
    ServerCancelCause,
    Transfer,
    TransferCode,
    TransferSide,
    TransferState,
    Vault,
)
from registry.services.common import (
    Actor,
    append_log,
    lock_open_vault,
    lock_providers,
    record_audit,
    refuse_registry_lock,
    timestamp,
    vault_record,
)
from registry.services.messages import message_enqueue

DEADLINE_ACTOR = Actor.system("transfer-deadline")
logger = logging.getLogger("registry.transfers")


def _required_text(value: str, field: str, max_length: int) -> str:
    value = (value or "").strip()
    if not value or len(value) > max_length:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            f"{field} is required (at most {max_length} characters).",
            extra={"errors": [{"field": field, "code": "required", "message": "required"}]},
        )
    return value


def transfer_deadline(requested_at: datetime) -> datetime:
    """When the registry approves a transfer the losing provider has not answered."""
    return workdays.add_working_days(
        requested_at,
        settings.TRANSFER_WINDOW_WORKING_DAYS,
        country=settings.TRANSFER_HOLIDAYS_COUNTRY,
        tz=settings.TRANSFER_TIME_ZONE,
    )


def _hosted_vault(provider: Provider, number: str) -> Vault:
    vault = lock_open_vault(number)
    if vault.provider_id != provider.pk:
        raise NotFound(ErrorCode.VAULT_NOT_FOUND, "You host no vault with this number.")
    return vault


def _usable_codes(vault: Vault):
    return TransferCode.objects.filter(vault=vault, used_at__isnull=True, voided_at__isnull=True)


def void_transfer_codes(vault: Vault, *, reason: CodeVoidReason, at: datetime) -> int:
    """Void (and wipe) the vault's usable code; runs inside the caller's transaction."""
    return _usable_codes(vault).update(
        voided_at=at, void_reason=reason, salt=b"", code_hash="", destroyed_at=at
    )


def void_transfer_codes_many(vaults: list[Vault], *, reason: CodeVoidReason, at: datetime) -> int:
    """``void_transfer_codes`` for many vaults, a thousand per query."""
    voided = 0
    for start in range(0, len(vaults), 1000):
        numbers = [vault.pk for vault in vaults[start : start + 1000]]
        voided += TransferCode.objects.filter(
            vault__in=numbers, used_at__isnull=True, voided_at__isnull=True
        ).update(voided_at=at, void_reason=reason, salt=b"", code_hash="", destroyed_at=at)
    return voided


def _destroy_code(code_id: Any, at: datetime) -> None:
    if code_id is not None:
        TransferCode.objects.filter(pk=code_id, destroyed_at__isnull=True).update(
            salt=b"", code_hash="", destroyed_at=at
        )


# --- Transfer codes -------------------------------------------------------------------------------


@transaction.atomic
def transfer_code_issue(
    *, actor: Actor, provider: Provider, vault: Vault, now: datetime | None = None
) -> tuple[TransferCode, str]:
    """Issue a code for one of ``provider``'s vaults, on its holder's behalf.

    Returns the record and the code value, which is shown this once and stored only as a salted
    hash. The previous usable code of the vault, if any, is voided.
    """
    now = now or timezone.now()
    vault = _hosted_vault(provider, vault.pk)
    refuse_registry_lock(vault, actor)
    void_transfer_codes(vault, reason=CodeVoidReason.REPLACED, at=now)
    value = transfer_codes.generate()
    salt = transfer_codes.new_salt()
    code = TransferCode.objects.create(
        vault=vault,
        provider=provider,
        salt=salt,
        code_hash=transfer_codes.hash_code(value, salt),
        created_at=now,
        expires_at=now + timedelta(days=settings.TRANSFER_CODE_VALID_DAYS),
    )
    data = {
        "vault": vault.number,
        "transfer_code": str(code.pk),
        "expires_at": timestamp(code.expires_at),
    }
    message_enqueue(provider=provider, kind=MessageKind.TRANSFER_CODE_ISSUED, data=data, at=now)
    record_audit(actor, "transfer_code:issued", code, at=now, data=data)
    return code, value


@transaction.atomic
def transfer_code_revoke(
    *, actor: Actor, provider: Provider, vault: Vault, now: datetime | None = None
) -> TransferCode:
    """Revoke the vault's usable code (the holder changed their mind, or it leaked)."""
    now = now or timezone.now()
    vault = _hosted_vault(provider, vault.pk)
    code = _usable_codes(vault).select_for_update().first()
    if code is None:
        raise NotFound(ErrorCode.TRANSFER_CODE_NOT_FOUND, "This vault has no usable code.")
    void_transfer_codes(vault, reason=CodeVoidReason.REVOKED, at=now)
    code.refresh_from_db()
    record_audit(actor, "transfer_code:revoked", code, at=now, data={"vault": vault.number})
    return code


def transfer_code_current(*, provider: Provider, vault: Vault) -> TransferCode | None:
    """The vault's latest code, whatever its state (a selector: it writes nothing)."""
    return TransferCode.objects.filter(vault=vault, provider=provider).first()


# --- Requests -------------------------------------------------------------------------------------


def _transfer_data(transfer: Transfer) -> dict[str, Any]:
    """What messages say about a transfer; never the code."""
    return {
        "transfer": str(transfer.pk),
        "vault": transfer.vault_id,
        "state": transfer.state,
        "losing_provider": str(transfer.losing_provider_id),
        "gaining_provider": str(transfer.gaining_provider_id),
        "requested_at": timestamp(transfer.requested_at),
        "deadline": timestamp(transfer.deadline),
        "resolved_at": timestamp(transfer.resolved_at) if transfer.resolved_at else None,
        "reason": transfer.outcome_reason,
    }


def _refusal_for_vault(vault: Vault, gaining: Provider, now: datetime) -> DomainError | None:
    """The first reason this vault cannot start moving to ``gaining`` now, if any."""
    if vault.provider_id == gaining.pk:
        return Conflict(ErrorCode.ALREADY_HOSTED_HERE, "You already host this vault.")
    if vault.registry_lock:
        return Conflict(ErrorCode.REGISTRY_LOCKED, "This vault is locked by the registry.")
    if vault.client_transfer_prohibited:
        return Conflict(
            ErrorCode.CLIENT_TRANSFER_PROHIBITED,
            "The holder asked their provider to block moves of this vault.",
        )
    if vault.client_hold or vault.server_hold:
        return Conflict(ErrorCode.VAULT_ON_HOLD, "This vault is on hold.")
    if vault.pending_transfer:  # kept with the pending transfer; the constraint backs it
        return Conflict(
            ErrorCode.TRANSFER_ALREADY_PENDING, "A transfer of this vault is already pending."
        )
    if vault.transferred_at is not None:
        locked_until = vault.transferred_at + timedelta(days=settings.TRANSFER_LOCK_DAYS)
        if locked_until > now:
            return Conflict(
                ErrorCode.POST_TRANSFER_LOCK,
                "This vault moved recently and cannot move again yet.",
                extra={"locked_until": timestamp(locked_until)},
            )
    return None


def _check_code(vault: Vault, code: str, actor: Actor, now: datetime) -> TransferCode | DomainError:
    """The vault's usable code if ``code`` is it; a wrong guess is counted and may lock it."""
    record = _usable_codes(vault).select_for_update().first()
    if record is None:
        return Forbidden(ErrorCode.TRANSFER_CODE_INVALID, "This is not the vault's code.")
    if record.locked_at is not None:
        return Forbidden(
            ErrorCode.TRANSFER_CODE_LOCKED,
            "This code is locked after too many wrong attempts: the holder needs a new one.",
        )
    if not transfer_codes.matches(code, bytes(record.salt), record.code_hash):
        record.failed_attempts += 1
        locked = record.failed_attempts >= settings.TRANSFER_CODE_MAX_ATTEMPTS
        if locked:
            record.locked_at = now
        record.save(update_fields=["failed_attempts", "locked_at"])
        record_audit(
            actor,
            "transfer_code:locked" if locked else "transfer_code:wrong_attempt",
            record,
            at=now,
            data={"vault": vault.number, "failed_attempts": record.failed_attempts},
        )
        if locked:
            return Forbidden(
                ErrorCode.TRANSFER_CODE_LOCKED,
                "Wrong code; it is now locked: the holder needs a new one.",
            )
        return Forbidden(
            ErrorCode.TRANSFER_CODE_INVALID,
            "This is not the vault's code.",
            extra={"attempts_left": settings.TRANSFER_CODE_MAX_ATTEMPTS - record.failed_attempts},
        )
    if record.expires_at <= now:
        return Forbidden(
            ErrorCode.TRANSFER_CODE_EXPIRED, "This code has expired: the holder needs a new one."
        )
    return record


@transaction.atomic
def _request(
    *,
    actor: Actor,
    gaining_provider: Provider,
    number: str,
    code: str,
    consent_reference: str,
    now: datetime,
) -> Transfer | DomainError:
    gaining = lock_providers(gaining_provider.pk)[gaining_provider.pk]  # before the vault
    if not gaining.is_active:
        return Conflict(
            ErrorCode.GAINING_PROVIDER_NOT_ACTIVE, f"Your organisation is {gaining.status}."
        )
    vault = lock_open_vault(number)
    refusal = _refusal_for_vault(vault, gaining, now)
    if refusal is not None:
        return refusal
    checked = _check_code(vault, code, actor, now)
    if isinstance(checked, DomainError):
        return checked
    checked.used_at = now
    checked.save(update_fields=["used_at"])
    transfer = Transfer(
        vault=vault,
        losing_provider_id=vault.provider_id,
        gaining_provider=gaining,
        code=checked,
        consent_reference=consent_reference,
        requested_at=now,
        deadline=transfer_deadline(now),
    )
    try:
        with transaction.atomic():
            transfer.save(force_insert=True)
    except IntegrityError:  # the partial unique constraint: the flag disagreed with the table
        raise Conflict(  # raised, not returned: the code must not be spent
            ErrorCode.TRANSFER_ALREADY_PENDING, "A transfer of this vault is already pending."
        ) from None
    vault.pending_transfer = True
    entry = append_log(
        LogKind.TRANSFER_REQUESTED,
        {
            "vault": vault.number,
            "transfer": str(transfer.pk),
            "provider": str(vault.provider_id),
            "gaining_provider": str(gaining.pk),
            "deadline": timestamp(transfer.deadline),
        },
        at=now,
        records=[vault_record(vault)],
    )
    vault.last_log_index = entry.sequence
    vault.save(update_fields=["pending_transfer", "last_log_index"])
    data = _transfer_data(transfer)
    message_enqueue(
        provider=transfer.losing_provider_id,
        kind=MessageKind.TRANSFER_REQUESTED,
        data=data,
        at=now,
    )
    record_audit(actor, "transfer:requested", transfer, at=now, log_entry=entry, data=data)
    return transfer


def _require_home(number: str) -> None:
    """Transfers stay home: a vault of another member registry is moved by that registry, to
    which the gaining provider applies (as a member there): refused here, naming it."""
    from directory.federation import members

    allocator = number[4:8]
    if members.is_local(allocator):
        return
    home = members.home_of(allocator)
    raise Forbidden(
        ErrorCode.NOT_A_MEMBER_OF_HOME_REGISTRY,
        f"This vault's home registry is {home.name}: apply there as a member to transfer it.",
        extra={"registry": home.name, "registry_url": home.url},
    )


def transfer_request(
    *,
    actor: Actor,
    gaining_provider: Provider,
    number: str,
    code: str,
    consent_reference: str,
    now: datetime | None = None,
) -> Transfer:
    """Request the move of vault ``number`` to ``gaining_provider`` with the holder's code.

    The transaction of ``_request`` commits before a refusal is raised, so that a wrong code is
    counted (and can lock the code) even though the request fails. A mistyped code (its check
    character does not match) is refused before anything is read or counted.
    """
    _require_home(number)
    consent_reference = _required_text(consent_reference, "consent_reference", 200)
    try:
        normalised = transfer_codes.normalise(code)
    except transfer_codes.InvalidCode as exc:
        raise InvalidInput(
            ErrorCode.TRANSFER_CODE_MALFORMED, exc.message, extra={"reason": str(exc.reason)}
        ) from None
    outcome = _request(
        actor=actor,
        gaining_provider=gaining_provider,
        number=number,
        code=normalised,
        consent_reference=consent_reference,
        now=now or timezone.now(),
    )
    if isinstance(outcome, DomainError):
        raise outcome
    return outcome


# --- Outcomes -------------------------------------------------------------------------------------


def _gaining_is_active(transfer: Transfer) -> bool:
    return Provider.objects.filter(
        pk=transfer.gaining_provider_id, status=OrganisationStatus.ACTIVE
    ).exists()


def _require_gaining_active(transfer: Transfer) -> None:
    if not _gaining_is_active(transfer):
        raise Conflict(
            ErrorCode.GAINING_PROVIDER_NOT_ACTIVE, "The gaining provider is no longer active."
        )


def _lock(transfer: Transfer) -> tuple[Transfer, Vault]:
    """Lock both providers (in id order), the vault, then the transfer: the lock order of
    ``registry.services.common``, which every transition takes."""
    sides = (
        Transfer.objects.filter(pk=transfer.pk)
        .values_list("vault_id", "losing_provider_id", "gaining_provider_id")
        .first()
    )
    if sides is None:
        raise NotFound(ErrorCode.TRANSFER_NOT_FOUND, "There is no such transfer.")
    vault_id, losing_id, gaining_id = sides  # never change once the transfer exists
    lock_providers(losing_id, gaining_id)
    vault = Vault.objects.select_for_update(no_key=True).get(pk=vault_id)
    return Transfer.objects.select_for_update(no_key=True).get(pk=transfer.pk), vault


def _require_pending_state(transfer: Transfer) -> None:
    if not transfer.is_pending:
        raise Conflict(
            ErrorCode.INVALID_TRANSFER_STATE,
            f"This transfer is {transfer.state}, not pending.",
            extra={"state": transfer.state},
        )


def _require_pending(transfer: Transfer, now: datetime) -> None:
    """Pending and still before its deadline: what the providers' own actions need."""
    _require_pending_state(transfer)
    if transfer.deadline <= now:
        raise Conflict(
            ErrorCode.TRANSFER_DEADLINE_PASSED,
            "The deadline has passed: the registry approves this transfer.",
            extra={"deadline": timestamp(transfer.deadline)},
        )


def _require_side(transfer: Transfer, provider: Provider, side: TransferSide) -> None:
    actual = transfer.side_of(provider)
    if actual is None:
        raise NotFound(ErrorCode.TRANSFER_NOT_FOUND, "There is no such transfer.")
    if actual != side:
        code = (
            ErrorCode.NOT_LOSING_PROVIDER
            if side == TransferSide.LOSING
            else ErrorCode.NOT_GAINING_PROVIDER
        )
        raise Forbidden(code, f"Only the {side.label} may do this.")


def _complete(
    transfer: Transfer,
    vault: Vault,
    state: TransferState,
    *,
    actor: Actor,
    now: datetime,
    note: str = "",
) -> Transfer:
    """Execute an approval: the vault routes to the gaining provider from this commit on."""
    losing_id = vault.provider_id
    vault.provider_id = transfer.gaining_provider_id
    vault.previous_provider_id = losing_id
    vault.transferred_at = now
    vault.pending_transfer = False
    # The losing provider's own flags do not follow the vault (EPP: client statuses go).
    vault.client_hold = False
    vault.client_transfer_prohibited = False
    void_transfer_codes(vault, reason=CodeVoidReason.TRANSFERRED, at=now)
    _destroy_code(transfer.code_id, now)
    transfer.state = state
    transfer.resolved_at = now
    transfer.outcome_note = note
    entry = append_log(
        LogKind.TRANSFER_COMPLETED,
        {
            "vault": vault.number,
            "transfer": str(transfer.pk),
            "outcome": str(state),
            "provider": str(transfer.gaining_provider_id),
            "previous_provider": str(losing_id),
        },
        at=now,
        records=[vault_record(vault)],
    )
    vault.last_log_index = entry.sequence
    vault.save(
        update_fields=[
            "provider",
            "previous_provider",
            "transferred_at",
            "pending_transfer",
            "client_hold",
            "client_transfer_prohibited",
            "last_log_index",
        ]
    )
    transfer.log_sequence = entry.sequence
    transfer.save(update_fields=["state", "resolved_at", "outcome_note", "log_sequence"])
    data = _transfer_data(transfer)
    if state == TransferState.CLIENT_APPROVED:
        message_enqueue(
            provider=transfer.gaining_provider_id,
            kind=MessageKind.TRANSFER_APPROVED,
            data=data,
            at=now,
        )
    for provider_id in (transfer.losing_provider_id, transfer.gaining_provider_id):
        message_enqueue(
            provider=provider_id, kind=MessageKind.TRANSFER_COMPLETED, data=data, at=now
        )
    record_audit(actor, f"transfer:{state}", transfer, at=now, log_entry=entry, data=data)
    return transfer


_NOTIFIED_ON_END = {
    TransferState.CLIENT_REJECTED: (MessageKind.TRANSFER_REJECTED, (TransferSide.GAINING,)),
    TransferState.CLIENT_CANCELLED: (MessageKind.TRANSFER_CANCELLED, (TransferSide.LOSING,)),
    TransferState.SERVER_CANCELLED: (
        MessageKind.TRANSFER_CANCELLED,
        (TransferSide.LOSING, TransferSide.GAINING),
    ),
}


def _end(
    transfer: Transfer,
    vault: Vault,
    state: TransferState,
    *,
    actor: Actor,
    now: datetime,
    reason: str = "",
    note: str = "",
) -> Transfer:
    """End a transfer without moving the vault (rejected or cancelled)."""
    transfer.state = state
    transfer.resolved_at = now
    transfer.outcome_reason = reason
    transfer.outcome_note = note
    vault.pending_transfer = False
    _destroy_code(transfer.code_id, now)
    kind = (
        LogKind.TRANSFER_REJECTED
        if state == TransferState.CLIENT_REJECTED
        else LogKind.TRANSFER_CANCELLED
    )
    entry = append_log(
        kind,
        {
            "vault": vault.number,
            "transfer": str(transfer.pk),
            "outcome": str(state),
            "reason": reason,
            "provider": str(vault.provider_id),
        },
        at=now,
        records=[vault_record(vault)],
    )
    vault.last_log_index = entry.sequence
    vault.save(update_fields=["pending_transfer", "last_log_index"])
    transfer.log_sequence = entry.sequence
    transfer.save(
        update_fields=["state", "resolved_at", "outcome_reason", "outcome_note", "log_sequence"]
    )
    data = _transfer_data(transfer)
    message_kind, sides = _NOTIFIED_ON_END[state]
    for side in sides:
        provider_id = (
            transfer.gaining_provider_id
            if side == TransferSide.GAINING
            else transfer.losing_provider_id
        )
        message_enqueue(provider=provider_id, kind=message_kind, data=data, at=now)
    record_audit(
        actor,
        f"transfer:{state}",
        transfer,
        at=now,
        log_entry=entry,
        data={**data, "note": note},
    )
    return transfer


@transaction.atomic
def transfer_approve(
    *, actor: Actor, provider: Provider, transfer: Transfer, now: datetime | None = None
) -> Transfer:
    """The losing provider lets the vault go now (``client_approved``)."""
    now = now or timezone.now()
    transfer, vault = _lock(transfer)
    _require_side(transfer, provider, TransferSide.LOSING)
    _require_pending(transfer, now)
    _require_gaining_active(transfer)
    return _complete(transfer, vault, TransferState.CLIENT_APPROVED, actor=actor, now=now)


@transaction.atomic
def transfer_reject(
    *,
    actor: Actor,
    provider: Provider,
    transfer: Transfer,
    reason: str,
    comment: str = "",
    now: datetime | None = None,
) -> Transfer:
    """The losing provider refuses the move, on one of the enumerated grounds only."""
    if reason not in RejectionReason.values:
        raise InvalidInput(
            ErrorCode.VALIDATION_ERROR,
            f"A rejection needs a reason among: {', '.join(RejectionReason.values)}.",
            extra={"errors": [{"field": "reason", "code": "invalid_choice", "message": reason}]},
        )
    now = now or timezone.now()
    transfer, vault = _lock(transfer)
    _require_side(transfer, provider, TransferSide.LOSING)
    _require_pending(transfer, now)
    return _end(
        transfer,
        vault,
        TransferState.CLIENT_REJECTED,
        actor=actor,
        now=now,
        reason=reason,
        note=(comment or "").strip()[:2000],
    )


@transaction.atomic
def transfer_cancel(
    *, actor: Actor, provider: Provider, transfer: Transfer, now: datetime | None = None
) -> Transfer:
    """The gaining provider withdraws its request (``client_cancelled``)."""
    now = now or timezone.now()
    transfer, vault = _lock(transfer)
    _require_side(transfer, provider, TransferSide.GAINING)
    _require_pending(transfer, now)
    return _end(transfer, vault, TransferState.CLIENT_CANCELLED, actor=actor, now=now)


@transaction.atomic
def transfer_server_cancel(
    *, actor: Actor, transfer: Transfer, reason: str, now: datetime | None = None
) -> Transfer:
    """A federation admin cancels a pending transfer, with a reason (``server_cancelled``)."""
    reason = _required_text(reason, "reason", 2000)
    now = now or timezone.now()
    transfer, vault = _lock(transfer)
    _require_pending_state(transfer)  # an admin may act past the deadline
    return _end(
        transfer,
        vault,
        TransferState.SERVER_CANCELLED,
        actor=actor,
        now=now,
        reason=ServerCancelCause.ADMIN,
        note=reason,
    )


@transaction.atomic
def transfer_server_approve(
    *, actor: Actor, transfer: Transfer, reason: str, now: datetime | None = None
) -> Transfer:
    """A federation admin settles a dispute by approving now, with a reason (server_approved)."""
    reason = _required_text(reason, "reason", 2000)
    now = now or timezone.now()
    transfer, vault = _lock(transfer)
    _require_pending_state(transfer)  # an admin may act past the deadline
    _require_gaining_active(transfer)
    return _complete(
        transfer, vault, TransferState.SERVER_APPROVED, actor=actor, now=now, note=reason
    )


@transaction.atomic
def transfer_settle(
    *, actor: Actor, transfer: Transfer, now: datetime | None = None
) -> Transfer | None:
    """Apply the deadline to one transfer: ``server_approved``, or ``server_cancelled`` when the
    gaining provider is no longer active. Returns None when there is nothing to do (not pending,
    or not due yet), so running it again, or from another machine, changes nothing more.
    """
    now = now or timezone.now()
    transfer, vault = _lock(transfer)
    if not transfer.is_pending or transfer.deadline > now:
        return None
    if not _gaining_is_active(transfer):
        return _end(
            transfer,
            vault,
            TransferState.SERVER_CANCELLED,
            actor=actor,
            now=now,
            reason=ServerCancelCause.GAINING_PROVIDER_NOT_ACTIVE,
        )
    return _complete(transfer, vault, TransferState.SERVER_APPROVED, actor=actor, now=now)


def transfer_settle_overdue(
    *,
    actor: Actor = DEADLINE_ACTOR,
    now: datetime | None = None,
    provider: Provider | None = None,
    vault_numbers: list[str] | None = None,
    transfer_ids: list[Any] | None = None,
    limit: int | None = None,
    failures: dict[Any, Exception] | None = None,
) -> int:
    """Settle every pending transfer past its deadline (optionally only some); returns how many.

    Each transfer is settled in its own transaction by ``transfer_settle``, so one failure does
    not undo the others and a concurrent run simply finds nothing left to do. Readers call this
    before answering (one indexed query when nothing is due), so no answer is ever stale.

    With ``failures`` (the operator's command), a transfer that fails is recorded there by id
    and skipped, here and in later calls given the same dict, and the others are settled;
    without it the first failure is raised.
    """
    now = now or timezone.now()
    due = Transfer.objects.overdue(now)
    if provider is not None:
        due = due.involving(provider)
    if vault_numbers is not None:
        due = due.filter(vault_id__in=vault_numbers)
    if transfer_ids is not None:
        due = due.filter(pk__in=transfer_ids)
    if failures:
        due = due.exclude(pk__in=list(failures))
    ids = list(due.order_by("deadline", "id").values_list("pk", flat=True)[:limit])
    settled = 0
    for pk in ids:
        try:
            if transfer_settle(actor=actor, transfer=Transfer(pk=pk), now=now) is not None:
                settled += 1
        except Exception as exc:
            if failures is None:
                raise
            logger.exception("Transfer %s could not be settled; the others go on", pk)
            failures[pk] = exc
    return settled


def cancel_pending_transfer(
    vault: Vault, *, actor: Actor, cause: ServerCancelCause, at: datetime, note: str = ""
) -> Transfer | None:
    """``server_cancelled`` for the vault's pending transfer, if any.

    Runs inside the caller's transaction, with the vault row already locked (closure, lock).
    """
    transfer = Transfer.objects.select_for_update(no_key=True).filter(vault=vault).pending().first()
    if transfer is None:
        return None
    return _end(
        transfer,
        vault,
        TransferState.SERVER_CANCELLED,
        actor=actor,
        now=at,
        reason=cause,
        note=note,
    )


# --- Transfer locks -------------------------------------------------------------------------------


@transaction.atomic
def vault_set_registry_lock(
    *, actor: Actor, vault: Vault, locked: bool, reason: str, now: datetime | None = None
) -> Vault:
    """Set or clear ``registry_lock``: federation admins only, always with a reason.

    Setting it cancels the vault's pending transfer (``server_cancelled``). The lock blocks
    transfers, updates and closure until an admin clears it.
    """
    if not actor.is_federation_admin:
        raise Forbidden(
            ErrorCode.PERMISSION_DENIED, "Only federation admins set or clear registry_lock."
        )
    reason = _required_text(reason, "reason", 2000)
    now = now or timezone.now()
    vault = lock_open_vault(vault.pk)
    if vault.registry_lock == locked:
        raise Conflict(
            ErrorCode.ALREADY_LOCKED if locked else ErrorCode.NOT_LOCKED,
            "This vault is already locked." if locked else "This vault is not locked.",
        )
    vault.registry_lock = locked
    vault.save(update_fields=["registry_lock"])
    if locked:
        cancel_pending_transfer(
            vault, actor=actor, cause=ServerCancelCause.REGISTRY_LOCK, at=now, note=reason
        )
    entry = append_log(
        LogKind.VAULT_REGISTRY_LOCK,
        {"vault": vault.number, "provider": str(vault.provider_id), "set": locked},
        at=now,
        records=[vault_record(vault)],
    )
    vault.last_log_index = entry.sequence
    vault.save(update_fields=["last_log_index"])
    record_audit(
        actor,
        "vault:registry_lock" if locked else "vault:registry_lock_cleared",
        vault,
        at=now,
        data={"reason": reason},
        log_entry=entry,
    )
    return vault


@transaction.atomic
def vault_set_transfer_prohibited(
    *, actor: Actor, provider: Provider, vault: Vault, prohibited: bool, now: datetime | None = None
) -> Vault:
    """Set or clear ``client_transfer_prohibited`` on the holder's request, by their provider.

    It refuses new transfer requests; a transfer already pending is not affected (the losing
    provider answers it, with a reason, or the deadline does).
    """
    now = now or timezone.now()
    vault = _hosted_vault(provider, vault.pk)
    refuse_registry_lock(vault, actor)
    if vault.client_transfer_prohibited == prohibited:
        raise Conflict(
            ErrorCode.ALREADY_TRANSFER_PROHIBITED
            if prohibited
            else ErrorCode.NOT_TRANSFER_PROHIBITED,
            "Moves of this vault are already blocked."
            if prohibited
            else "Moves of this vault are not blocked.",
        )
    vault.client_transfer_prohibited = prohibited
    entry = append_log(
        LogKind.VAULT_TRANSFER_PROHIBITED,
        {"vault": vault.number, "provider": str(vault.provider_id), "set": prohibited},
        at=now,
        records=[vault_record(vault)],
    )
    vault.last_log_index = entry.sequence
    vault.save(update_fields=["client_transfer_prohibited", "last_log_index"])
    record_audit(
        actor,
        "vault:client_transfer_prohibited" if prohibited else "vault:client_transfer_allowed",
        vault,
        at=now,
        log_entry=entry,
    )
    return vault
