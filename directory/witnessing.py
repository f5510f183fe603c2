"""Asking the configured witnesses to cosign a new checkpoint (c2sp.org/tlog-witness client).

Each witness gets an add-checkpoint request, all in parallel, within one total timeout
(``VAULT_WITNESS_TIMEOUT``, 5 s). The old size sent is the size that witness last cosigned as far
as this process knows (0 at first); a 409 answer carries the witness's size and the request is
retried once from there. Only cosignatures that verify against the witness's key on this very
note are returned; every failure is logged and skipped, never raised: the caller publishes the
checkpoint with whatever cosignatures came back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from django.conf import settings

from directory.transparency import cosignature as cosig
from directory.witness.app import Post, urllib_post

logger = logging.getLogger("directory.witnessing")

DEFAULT_TIMEOUT = 5.0
Consistency = Callable[[int, int], list[bytes]]
"""``consistency(old, new)``: the RFC 9162 consistency proof between two sizes (0 < old < new)."""

_sizes: dict[str, int] = {}  # witness name → size it last cosigned, as far as this process knows
_sizes_lock = threading.Lock()


class _Refused(Exception):
    pass


def _proof(consistency: Consistency, old: int, new: int) -> list[bytes]:
    return [] if old in (0, new) else consistency(old, new)


def _ask(
    note: str,
    size: int,
    consistency: Consistency,
    witness: dict[str, Any],
    post: Post,
    sizes: MutableMapping[str, int],
) -> list[str]:
    """One witness: add-checkpoint (retried once after a 409), the cosignature lines that verify."""
    name, public = cosig.parse_vkey(witness["vkey"])
    if name != witness["name"]:
        raise _Refused(f"its vkey names {name!r}")
    url = witness["url"].rstrip("/") + "/add-checkpoint"
    with _sizes_lock:
        old = sizes.get(name, 0)
    for attempt in range(2):
        if old > size:
            raise _Refused(f"it cosigned size {old}, above this checkpoint's {size}")
        body = cosig.add_checkpoint_body(old, _proof(consistency, old, size), note)
        status, answer = post(url, {"Content-Type": "text/plain; charset=utf-8"}, body)
        if status == 409 and attempt == 0:
            text = answer.decode(errors="replace").strip()
            if not text.isdigit() or int(text) == old:
                raise _Refused(f"409 Conflict at size {old}: {text[:100]!r}")
            old = int(text)
            continue
        if status != 200:
            raise _Refused(f"HTTP {status}: {answer[:200].decode(errors='replace')!r}")
        break
    lines = [line + "\n" for line in answer.decode(errors="replace").splitlines() if line]
    valid = []
    for line in lines:
        try:
            if name in cosig.verify_cosignatures(note + line, {name: [public]}):
                valid.append(line)
        except cosig.CosignatureError as exc:
            logger.warning("witness %s: a cosignature does not verify: %s", name, exc)
    if not valid:
        raise _Refused("no valid cosignature in its answer")
    with _sizes_lock:
        sizes[name] = size
    return valid


def _size_of(note: str) -> int:
    text, _signatures = cosig.split_note(note)
    lines = text.split("\n")
    if len(lines) < 4 or not lines[1].isdigit():
        raise cosig.CosignatureError("not a checkpoint")
    return int(lines[1])


def request_cosignatures(
    note: str,
    consistency: Consistency,
    witnesses: list[dict[str, Any]] | None = None,
    *,
    post: Post | None = None,
    timeout: float | None = None,
    sizes: MutableMapping[str, int] | None = None,
) -> list[str]:
    """Cosignature lines (newline-terminated) for ``note`` from the witnesses that gave one.

    ``witnesses`` defaults to ``settings.VAULT_WITNESSES`` (``{"name", "vkey", "url"}`` each);
    ``sizes`` (witness name → size it last cosigned) to this process's memory.
    """
    if witnesses is None:
        witnesses = getattr(settings, "VAULT_WITNESSES", [])
    if not witnesses:
        return []
    try:
        size = _size_of(note)
    except cosig.CosignatureError as exc:
        logger.error("not asking witnesses to cosign a malformed checkpoint: %s", exc)
        return []
    if timeout is None:
        timeout = float(getattr(settings, "VAULT_WITNESS_TIMEOUT", DEFAULT_TIMEOUT))
    post = post or urllib_post(timeout=timeout)
    sizes = _sizes if sizes is None else sizes
    pool = ThreadPoolExecutor(max_workers=len(witnesses), thread_name_prefix="witness")
    futures = {
        pool.submit(_ask, note, size, consistency, witness, post, sizes): witness
        for witness in witnesses
    }
    _done, late = wait(futures, timeout=timeout)
    pool.shutdown(wait=False, cancel_futures=True)
    lines: list[str] = []
    for future, witness in futures.items():
        label = witness.get("name", "?")
        if future in late:
            logger.warning("witness %s: no answer within %.1f s", label, timeout)
            continue
        try:
            lines += future.result()
        except (_Refused, cosig.CosignatureError, OSError, KeyError, ValueError) as exc:
            logger.warning("witness %s did not cosign size %d: %s", label, size, exc)
        except Exception:
            logger.exception("witness %s: unexpected failure", label)
    return lines
