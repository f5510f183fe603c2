"""Publishing signed checkpoints of the log, and the per-process cache of the latest one."""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from directory import keys, tree
from directory.models import Checkpoint
from directory.transparency import note
from registry.models import LogHead

logger = logging.getLogger("directory.checkpoints")

# How long a process serves its copy of the latest checkpoint before asking the database again
# (a newer one is read at once when a vault changed after it: see ``covering``).
_CACHE_SECONDS = 10.0
_cache: dict[str, tuple[float, Checkpoint | None]] = {}


def log_size() -> int:
    """The number of entries appended and committed."""
    return LogHead.objects.values_list("size", flat=True).filter(pk=1).first() or 0


@transaction.atomic
def publish(*, force: bool = False) -> Checkpoint:
    """Sign and store a checkpoint over the whole committed log (unless the latest has its size).

    The size and the stored tree nodes are committed together by the append, so the root is
    computed from ``log2(size)`` rows that exist for any committed size.
    """
    size = log_size()
    latest = Checkpoint.objects.first()
    if latest is not None and latest.size == size and not force:
        return latest
    if latest is not None and latest.size > size:
        raise ImproperlyConfigured("The log is smaller than its latest checkpoint.")
    key = keys.signing_key(keys.Purpose.LOG)
    root = tree.root(size)
    signed = note.sign(
        note.checkpoint_text(settings.VAULT_LOG_ORIGIN, size, root), key.name, key.private
    )
    checkpoint = Checkpoint.objects.create(
        size=size,
        root_hash=root,
        note=signed,
        key_name=key.name,
        key_hash=note.key_hash(key.name, key.public).hex(),
    )
    _cache.clear()
    return checkpoint


def publish_if_due() -> None:
    """After a write commits: publish unless a checkpoint is younger than the interval.

    A missing key only logs a warning: the write is committed and the timer's
    ``publish_checkpoint`` will catch up once keys exist.
    """
    interval = timedelta(seconds=settings.VAULT_CHECKPOINT_INTERVAL)
    latest = Checkpoint.objects.only("created_at", "size").first()
    if latest is not None and timezone.now() - latest.created_at < interval:
        return
    try:
        publish()
    except ImproperlyConfigured as exc:
        logger.warning("No checkpoint published: %s", exc)


def latest(*, covering: int | None = None) -> Checkpoint | None:
    """The latest checkpoint, cached per process for a few seconds.

    With ``covering``, a cached checkpoint too small to include that leaf index is refreshed.
    """
    now = time.monotonic()
    cached = _cache.get("latest")
    if cached is not None and now - cached[0] < _CACHE_SECONDS:
        checkpoint = cached[1]
        if covering is None or (checkpoint is not None and checkpoint.size > covering):
            return checkpoint
    checkpoint = Checkpoint.objects.first()
    _cache["latest"] = (now, checkpoint)
    return checkpoint


def clear_cache() -> None:
    _cache.clear()
