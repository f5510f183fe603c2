"""What every service needs: who acts, the append-only log and the audit trail."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import rfc8785
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, models, transaction

from directory import checkpoints, tree
from directory.models import VaultLogRef
from registry.errors import Conflict, ErrorCode, Gone, NotFound
from registry.models import ApiToken, AuditEvent, LogEntry, LogHead, Provider, Vault, VaultStatus


@dataclass(frozen=True, slots=True)
class Actor:
    """Who performs a write: an admin user, an API token, or an operator's command."""

    label: str
    user: AbstractBaseUser | None = None
    token: ApiToken | None = None

    @classmethod
    def for_user(cls, user: AbstractBaseUser) -> Actor:
        return cls(label=f"user:{user.get_username()}", user=user)

    @classmethod
    def for_token(cls, token: ApiToken) -> Actor:
        owner = "provider" if token.provider_id else "issuer"
        owner_id = token.provider_id or token.issuer_id
        return cls(label=f"{owner}:{owner_id} token:{token.prefix}", token=token)

    @classmethod
    def system(cls, name: str) -> Actor:
        return cls(label=f"system:{name}")

    @classmethod
    def public(cls, remote: str = "") -> Actor:
        return cls(label=f"public:{remote}" if remote else "public")


def lock_active_provider(provider: Provider) -> Provider:
    """Re-read ``provider`` under a row lock and refuse it unless active.

    The lock orders the caller after any concurrent status change (a share lock would do; FOR
    UPDATE is portable).
    """
    provider = Provider.objects.select_for_update().get(pk=provider.pk)
    if not provider.is_active:
        raise Conflict(
            ErrorCode.PROVIDER_NOT_ACTIVE, f"The provider is {provider.status}, not active."
        )
    return provider


def touch_provider(provider_id: Any, sequence: int) -> None:
    """Move the provider's log position: the key under which its route is cached for lookups
    (directory.selectors), so every routing-relevant change of the provider calls this."""
    Provider.objects.filter(pk=provider_id).update(last_log_index=sequence)


def lock_open_vault(number: str) -> Vault:
    """Read vault ``number`` under a row lock for a change; 404 if none has it, 410 if closed."""
    vault = Vault.objects.select_for_update().filter(pk=number).first()
    if vault is None:
        raise NotFound(ErrorCode.VAULT_NOT_FOUND, "No vault has this number.")
    if vault.status == VaultStatus.CLOSED:
        raise Gone(ErrorCode.VAULT_CLOSED, "This vault is closed.")
    return vault


def refuse_registry_lock(vault: Vault, actor: Actor) -> None:
    """``registry_lock`` blocks every change a provider asks for; only federation admins act."""
    if vault.registry_lock and actor.user is None:
        raise Conflict(ErrorCode.REGISTRY_LOCKED, "This vault is locked by the registry.")


def timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds, as it appears in log entries."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(payload: dict[str, Any]) -> bytes:
    """RFC 8785 (JCS) canonical JSON bytes."""
    return rfc8785.dumps(payload)


def leaf_hash(body: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 ‖ entry)."""
    return hashlib.sha256(b"\x00" + body).digest()


def _reserve(count: int) -> int:
    """Reserve ``count`` consecutive log positions and return the first.

    One UPDATE … RETURNING both increments the head and row-locks it until commit, so concurrent
    writers queue here and sequences stay gapless: a rolled-back transaction releases its range.
    """
    table = LogHead._meta.db_table
    sql = f"UPDATE {table} SET size = size + %s WHERE id = 1 RETURNING size"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [count])
        row = cursor.fetchone()
    if row is None:
        LogHead.objects.get_or_create(pk=1)
        return _reserve(count)
    return row[0] - count


def append_log(kind: str, payload: dict[str, Any], *, at: datetime) -> LogEntry:
    """Append one entry; must run inside the transaction of the change it records."""
    return append_log_many([(kind, payload)], at=at)[0]


def append_log_many(items: Sequence[tuple[str, dict[str, Any]]], *, at: datetime) -> list[LogEntry]:
    """Append entries, extend the stored Merkle tree and index the vaults they name.

    Must run inside the transaction of the change it records: the entries, their tree nodes and
    their vault references commit with it or not at all. A checkpoint is published after commit
    if the latest one is older than ``VAULT_CHECKPOINT_INTERVAL``.
    """
    first = _reserve(len(items))
    entries, refs = [], []
    for offset, (kind, payload) in enumerate(items):
        body = canonical({"kind": str(kind), "at": timestamp(at), **payload})
        entries.append(
            LogEntry(
                sequence=first + offset,
                kind=str(kind),
                body=body,
                leaf_hash=leaf_hash(body),
                created_at=at,
            )
        )
        if isinstance(payload.get("vault"), str):
            refs.append(VaultLogRef(number=payload["vault"], sequence=first + offset))
    LogEntry.objects.bulk_create(entries, batch_size=2000)
    tree.extend(first, [entry.leaf_hash for entry in entries])
    VaultLogRef.objects.bulk_create(refs, batch_size=2000)
    _schedule_checkpoint()
    return entries


def _schedule_checkpoint() -> None:
    # Robust: the change is committed whatever happens to the checkpoint. A transaction with
    # several appends schedules several calls; all but the first find a fresh checkpoint.
    transaction.on_commit(checkpoints.publish_if_due, robust=True)


def record_audit(
    actor: Actor,
    action: str,
    target: models.Model,
    *,
    at: datetime,
    data: dict[str, Any] | None = None,
    log_entry: LogEntry | None = None,
) -> AuditEvent:
    """Record who did what; must run inside the transaction of the change it records."""
    return AuditEvent.objects.create(
        created_at=at,
        actor=actor.label,
        actor_user=actor.user,
        actor_token=actor.token,
        action=action,
        target_type=target._meta.model_name,
        target_id=str(target.pk),
        data=data or {},
        log_sequence=log_entry.sequence if log_entry else None,
    )
