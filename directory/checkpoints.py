"""Publishing signed checkpoints of the log and its state map, and the one lookups are served at.

The registry never signs what it cannot re-derive: ``publish`` checks the last signed checkpoint
(its signature and its root against the stored tree), recomputes the new log root from the tail
entries' bytes on top of the old tree's frontier, and recomputes the new map root by replaying
the tail's records onto the old map (whose root the last checkpoint signed). Anything else —
a rewritten entry, forged tree or map rows, a map the log does not produce — raises
``CheckpointRefused``: an error is logged and the last good checkpoint stays the one served.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from directory import keys, state, tree
from directory.models import Checkpoint
from directory.transparency import merkle, note, statemap
from directory.transparency import records as rec
from registry.models import LogEntry, LogHead
from registry.routers import reading

logger = logging.getLogger("directory.checkpoints")

# How long a process serves its copy of the serving checkpoint before asking the database again.
_CACHE_SECONDS = 1.0
_cache: dict[str, tuple[float, Checkpoint | None]] = {}


class CheckpointRefused(Exception):
    """The registry refuses to sign: its stored log or map is not what the signed history and
    the log entries produce."""


def log_size() -> int:
    """The number of entries appended and committed."""
    return LogHead.objects.values_list("size", flat=True).filter(pk=1).first() or 0


def _log_public_keys() -> dict[str, list[bytes]]:
    found: dict[str, list[bytes]] = {}
    for entry in keys.public_manifest().get(keys.Purpose.LOG, []):
        found.setdefault(entry["name"], []).append(base64.b64decode(entry["public_key"]))
    return found


def _tail(start: int, end: int):
    """The bytes of entries [start, end), in order, streamed."""
    rows = LogEntry.objects.filter(sequence__gte=start, sequence__lt=end).order_by("sequence")
    for body in rows.values_list("body", flat=True).iterator(chunk_size=5000):
        yield bytes(body)


def verified_roots(previous: Checkpoint | None, size: int) -> tuple[bytes, bytes]:
    """The log and map roots at ``size``, recomputed from the entries on top of ``previous``
    (the last signed checkpoint) and checked against the stored tree and map."""
    if previous is None:
        start, frontier, old_map = 0, [], statemap.EMPTY
    else:
        try:
            signed = note.parse_checkpoint(previous.note, _log_public_keys())
        except note.NoteError as exc:
            raise CheckpointRefused(f"the last checkpoint does not verify: {exc}") from exc
        if signed.size != previous.size or signed.root != bytes(previous.root_hash):
            raise CheckpointRefused("the last checkpoint row differs from its signed note")
        start, old_map = signed.size, signed.map_root or statemap.EMPTY
        wanted = tree.frontier_keys(start)
        try:
            found = tree.fetch_nodes(wanted)
        except LookupError as exc:
            raise CheckpointRefused(f"the stored tree is incomplete: {exc}") from exc
        frontier = [(level, found[(level, index)]) for level, index in wanted]
        if merkle.root_from_frontier([digest for _level, digest in frontier]) != signed.root:
            raise CheckpointRefused(
                f"the stored tree no longer gives the root signed at size {start}"
            )
    touched: dict[str, bytes] = {}
    count = 0
    for body in _tail(start, size):
        count += 1
        merkle.push_leaf(frontier, merkle.leaf_hash(body))
        try:
            for record in rec.entry_records(json.loads(body)):
                touched[rec.key_of(record)] = rec.value_of(record)
        except (ValueError, KeyError) as exc:
            raise CheckpointRefused(f"a log entry's records are malformed: {exc}") from exc
    if count != size - start:
        raise CheckpointRefused(f"log entries missing between {start} and {size}")
    log_root = merkle.root_from_frontier([digest for _level, digest in frontier])
    if size and log_root != tree.root(size):
        raise CheckpointRefused(f"the stored tree disagrees with the entries at size {size}")
    paths = {statemap.path_of(key): value for key, value in touched.items()}
    if previous is None:  # the first checkpoint: the whole map, from the whole log
        map_root = statemap.root_of(paths.items())
        if map_root != state.root(size):
            raise CheckpointRefused(f"the stored map is not what the log produces at {size}")
        return log_root, map_root
    partial = statemap.PartialTree.load(list(paths), state._fetch(start))
    if partial.root() != old_map:
        raise CheckpointRefused(f"the stored map no longer gives the root signed at size {start}")
    for path, value in paths.items():
        partial.set(path, value)
    map_root = partial.root()
    if map_root != state.root(size):
        raise CheckpointRefused(f"the stored map is not what the log produces at size {size}")
    return log_root, map_root


def _last_signed_here() -> dict | None:
    path = settings.VAULT_CHECKPOINT_STATE_FILE
    if not path or not Path(path).exists():
        return None
    return json.loads(Path(path).read_text())


def _check_against_last_signed_here(size: int, log_root: bytes) -> None:
    """The database's history must extend the last checkpoint this server signed, kept in a
    file outside the database: deleting checkpoint rows and rewriting the log behind the
    registry's back does not make it sign a fork."""
    seen = _last_signed_here()
    if seen is None or seen.get("origin") != settings.VAULT_LOG_ORIGIN:
        return
    seen_size, seen_root = seen["size"], bytes.fromhex(seen["root"])
    if size < seen_size:
        raise CheckpointRefused(
            f"the log has {size} entries, fewer than the {seen_size} this server signed"
        )
    if size == seen_size:
        if log_root != seen_root:
            raise CheckpointRefused(f"another tree of size {size} than the one this server signed")
        return
    if seen_size == 0:
        return
    try:
        merkle.verify_consistency(
            seen_size, size, tree.consistency_proof(seen_size, size), seen_root, log_root
        )
    except (merkle.ProofError, LookupError) as exc:
        raise CheckpointRefused(
            f"the log of size {size} does not extend the checkpoint of size {seen_size} this "
            f"server signed: its history was rewritten ({exc})"
        ) from exc


def _remember_signed_here(checkpoint: Checkpoint) -> None:
    path = settings.VAULT_CHECKPOINT_STATE_FILE
    if not path:
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(
        json.dumps(
            {
                "origin": settings.VAULT_LOG_ORIGIN,
                "size": checkpoint.size,
                "root": bytes(checkpoint.root_hash).hex(),
                "note": checkpoint.note,
            }
        )
    )
    tmp.replace(path)


@transaction.atomic
def _sign(*, force: bool) -> Checkpoint:
    size = log_size()
    latest = Checkpoint.objects.first()
    refresh = timedelta(seconds=settings.VAULT_CHECKPOINT_REFRESH)
    if (
        latest is not None
        and latest.size == size
        and not force
        and timezone.now() - latest.created_at < refresh
    ):
        return latest
    if latest is not None and latest.size > size:
        raise CheckpointRefused("The log is smaller than its latest checkpoint.")
    key = keys.signing_key(keys.Purpose.LOG)
    log_root, map_root = verified_roots(latest, size)
    _check_against_last_signed_here(size, log_root)
    signed = note.sign(
        note.checkpoint_text(
            settings.VAULT_LOG_ORIGIN, size, log_root, map_root=map_root, time=int(time.time())
        ),
        key.name,
        key.private,
    )
    return Checkpoint.objects.create(
        size=size,
        root_hash=log_root,
        map_root=map_root,
        note=signed,
        key_name=key.name,
        key_hash=note.key_hash(key.name, key.public).hex(),
    )


def publish(*, force: bool = False) -> Checkpoint:
    """Sign and store a checkpoint over the whole committed log, then ask the witnesses.

    A checkpoint of the same size is re-signed (new time) only with ``force`` or when the
    latest is older than ``VAULT_CHECKPOINT_REFRESH``. Raises CheckpointRefused (logged) when
    the stored log or map is not what the signed history and the entries produce.
    """
    try:
        checkpoint = _sign(force=force)
    except CheckpointRefused as exc:
        logger.error("Checkpoint refused, the last good one stays in place: %s", exc)
        raise
    _remember_signed_here(checkpoint)
    if not checkpoint.cosigners:
        _cosign(checkpoint)
    _cache.clear()
    return checkpoint


def _cosign(checkpoint: Checkpoint) -> None:
    """Ask the witnesses (``VAULT_WITNESSES``, or in a federation the peers') to cosign."""
    from directory import witnessing
    from directory.federation import members

    witnesses = members.witnesses()
    if not witnesses:
        return
    lines = witnessing.request_cosignatures(checkpoint.note, tree.consistency_proof, witnesses)
    if lines:
        names = sorted({line.split(" ")[1] for line in lines})
        checkpoint.note = checkpoint.note + "".join(
            line if line.endswith("\n") else line + "\n" for line in lines
        )
        checkpoint.cosigners = names
        Checkpoint.objects.filter(pk=checkpoint.pk).update(note=checkpoint.note, cosigners=names)


def publish_safely() -> None:
    """Publish, logging instead of raising: writes are committed whatever happens here."""
    try:
        publish()
    except (ImproperlyConfigured, CheckpointRefused) as exc:
        logger.warning("No checkpoint published: %s", exc)


_timer_lock = threading.Lock()
_timer: threading.Timer | None = None


def _publish_in_thread() -> None:
    global _timer
    with _timer_lock:
        _timer = None
    try:
        publish_safely()
    finally:
        close_old_connections()
        connection.close()


def publish_soon() -> None:
    """After a write commits: publish at once, or within ``VAULT_CHECKPOINT_INTERVAL`` seconds
    from a background thread, so every write is signed within a few seconds without a timer
    and a burst of writes costs one signature per interval."""
    global _timer
    interval = settings.VAULT_CHECKPOINT_INTERVAL
    if interval <= 0:
        publish_safely()
        return
    with _timer_lock:
        if _timer is None:
            _timer = threading.Timer(interval, _publish_in_thread)
            _timer.daemon = True
            _timer.start()


def _with_quorum(candidates) -> Checkpoint | None:
    """The first of ``candidates`` (newest first) with the cosignatures the registry requires
    of itself; only the last few are looked at (witnesses answer within seconds)."""
    quorum = settings.VAULT_WITNESS_QUORUM
    if quorum <= 0:
        return candidates.first()
    return next((c for c in candidates[:50] if len(c.cosigners) >= quorum), None)


def serving(*, at_or_before=None) -> Checkpoint | None:
    """The checkpoint answers are proven against: the latest with the witness quorum the
    registry requires of itself (``VAULT_WITNESS_QUORUM``); with ``at_or_before``, the one in
    force then. The latest is cached per process for a second."""
    if at_or_before is not None:
        return _with_quorum(
            Checkpoint.objects.using(reading()).filter(created_at__lte=at_or_before)
        )
    # One per database alias: an answer's records must come from the alias its checkpoint was
    # read from (a replica has replayed the records of every checkpoint it holds, not those of
    # the primary's newer ones).
    alias = reading()
    now = time.monotonic()
    cached = _cache.get(alias)
    if cached is not None and now - cached[0] < _CACHE_SECONDS:
        return cached[1]
    checkpoint = _with_quorum(Checkpoint.objects.using(alias))
    _cache[alias] = (now, checkpoint)
    refresh = timedelta(seconds=settings.VAULT_CHECKPOINT_REFRESH)
    if checkpoint is not None and timezone.now() - checkpoint.created_at > refresh:
        # Keep the time line fresh for clients that refuse stale checkpoints, without a timer:
        # re-signing is the registry's own housekeeping, done in the background (the answer
        # is still proven against this checkpoint, which was true when signed).
        _schedule_refresh()
    return checkpoint


def _schedule_refresh() -> None:
    global _timer
    if settings.VAULT_CHECKPOINT_INTERVAL <= 0:
        return  # tests and single-threaded runs: refreshed by the next write or the timer
    with _timer_lock:
        if _timer is None:
            _timer = threading.Timer(0, _publish_in_thread)
            _timer.daemon = True
            _timer.start()


def latest(*, covering: int | None = None) -> Checkpoint | None:
    """The latest checkpoint served (kept for callers that name a log position)."""
    return serving()


def clear_cache() -> None:
    _cache.clear()
