"""A verified local mirror of the log in SQLite, replayed into routing state for offline answers.

``sync`` follows the registry's checkpoints: each new one must be signed by a pinned key and
consistent with the last one mirrored (RFC 9162 consistency proof), its entries must hash to the
level-0 tiles, entries already mirrored must come back unchanged, and all the leaves must hash to
the checkpoint's root. Anything else is refused and nothing is written.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from directory.client import http
from directory.client.errors import Inconsistent, Tampered
from directory.client.verify import PinnedKeys, check_consistent, verify_checkpoint
from directory.transparency import merkle, tiles
from registry.numbers import compact

SCHEMA = """
CREATE TABLE IF NOT EXISTS leaves (idx INTEGER PRIMARY KEY, hash BLOB NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS frontier (pos INTEGER PRIMARY KEY, level INTEGER, hash BLOB);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY, root BLOB NOT NULL, note TEXT NOT NULL, seen_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS vaults (
    number TEXT PRIMARY KEY, provider TEXT, status TEXT, client_hold INTEGER DEFAULT 0,
    server_hold INTEGER DEFAULT 0, last_index INTEGER);
CREATE TABLE IF NOT EXISTS providers (
    id TEXT PRIMARY KEY, status TEXT, legal_name TEXT, legal_id TEXT, last_index INTEGER);
CREATE TABLE IF NOT EXISTS endpoints (
    id TEXT PRIMARY KEY, provider TEXT, url TEXT, transport_profile TEXT, activates_at TEXT,
    expires_at TEXT, deactivated_at TEXT);
CREATE TABLE IF NOT EXISTS certificates (
    id TEXT PRIMARY KEY, provider TEXT, use TEXT, fingerprint TEXT, not_before TEXT,
    not_after TEXT, retired_at TEXT);
CREATE TABLE IF NOT EXISTS touches (provider TEXT, idx INTEGER, PRIMARY KEY (provider, idx));
CREATE TABLE IF NOT EXISTS monitor_marks (provider TEXT PRIMARY KEY, last_index INTEGER);
CREATE INDEX IF NOT EXISTS endpoints_provider ON endpoints (provider);
CREATE INDEX IF NOT EXISTS certificates_provider ON certificates (provider);
"""

Progress = Callable[[int, int], None]


def now_stamp() -> str:
    """Now, in the log's time format (RFC 3339 UTC with microseconds), comparable as text."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Mirror:
    """The mirror database at ``path``."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.db = sqlite3.connect(self.path, isolation_level=None)
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # --- State ------------------------------------------------------------------------------

    def latest(self) -> tuple[int, bytes, str] | None:
        row = self.db.execute(
            "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1"
        ).fetchone()
        return (row[0], bytes(row[1]), row[2]) if row else None

    def size(self) -> int:
        latest = self.latest()
        return latest[0] if latest else 0

    def _frontier(self) -> merkle.Frontier:
        rows = self.db.execute("SELECT level, hash FROM frontier ORDER BY pos").fetchall()
        return [(level, bytes(digest)) for level, digest in rows]

    # --- Sync -------------------------------------------------------------------------------

    def sync(
        self, registry: http.Registry, keys: PinnedKeys, progress: Progress | None = None
    ) -> tuple[int, int]:
        """Mirror up to the registry's latest checkpoint; returns (old size, new size)."""
        checkpoint = verify_checkpoint(registry.checkpoint(), keys)
        latest = self.latest()
        old_size = latest[0] if latest else 0
        if latest is not None and checkpoint.size < old_size:
            raise Inconsistent(
                f"the registry serves a checkpoint of size {checkpoint.size}, smaller than the "
                f"{old_size} entries already mirrored: the log was truncated or rolled back"
            )
        check_consistent(latest[:2] if latest else None, checkpoint, registry.consistency_proof)
        if checkpoint.size == old_size:
            return old_size, old_size
        self.db.execute("BEGIN IMMEDIATE")
        try:
            frontier = self._frontier()
            first_tile = old_size // tiles.TILE_WIDTH
            for tile in range(first_tile, -(-checkpoint.size // tiles.TILE_WIDTH)):
                start = tile * tiles.TILE_WIDTH
                width = min(tiles.TILE_WIDTH, checkpoint.size - start)
                self._sync_tile(registry, tile, start, width, old_size, frontier)
                if progress:
                    progress(start + width - old_size, checkpoint.size - old_size)
            root = merkle.root_from_frontier([digest for _level, digest in frontier])
            if root != checkpoint.root:
                raise Inconsistent(
                    f"the log's entries do not hash to the root of checkpoint {checkpoint.size}"
                )
            self.db.execute("DELETE FROM frontier")
            self.db.executemany(
                "INSERT INTO frontier (pos, level, hash) VALUES (?, ?, ?)",
                [(pos, level, digest) for pos, (level, digest) in enumerate(frontier)],
            )
            self.db.execute(
                "INSERT INTO checkpoints (size, root, note, seen_at) VALUES (?, ?, ?, ?)",
                (checkpoint.size, checkpoint.root, checkpoint.note, now_stamp()),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return old_size, checkpoint.size

    def _sync_tile(self, registry, tile, start, width, old_size, frontier) -> None:
        bodies = tiles.split_bundle(registry.entries(tile, width))
        hashes = registry.tile(0, tile, width)
        if len(bodies) != width or len(hashes) != 32 * width:
            raise Tampered(f"tile {tile} does not hold {width} entries")
        known = dict(
            self.db.execute(
                "SELECT idx, hash FROM leaves WHERE idx >= ? AND idx < ?", (start, old_size)
            ).fetchall()
        )
        for offset, body in enumerate(bodies):
            index = start + offset
            digest = merkle.leaf_hash(body)
            if digest != hashes[32 * offset : 32 * offset + 32]:
                raise Inconsistent(f"entry {index} does not hash to its leaf in the signed tree")
            if index < old_size:
                if bytes(known.get(index, b"")) != digest:
                    raise Inconsistent(f"entry {index} changed since it was mirrored: rewritten")
                continue
            self.db.execute(
                "INSERT INTO leaves (idx, hash, body) VALUES (?, ?, ?)", (index, digest, body)
            )
            merkle.push_leaf(frontier, digest)
            self._apply(index, json.loads(body))

    # --- Replay -----------------------------------------------------------------------------

    def _touch(self, provider: Any, index: int) -> None:
        if isinstance(provider, str):
            self.db.execute("INSERT OR IGNORE INTO touches VALUES (?, ?)", (provider, index))

    def _apply(self, index: int, entry: dict[str, Any]) -> None:
        """Replay one entry into the routing state."""
        kind, at, provider = entry.get("kind", ""), entry.get("at"), entry.get("provider")
        for value in entry.values():  # every provider an entry names (e.g. both transfer sides)
            if isinstance(value, str) and len(value) == 36 and value.count("-") == 4:
                self._touch(value, index)
        vault = entry.get("vault")
        if isinstance(vault, str):
            row = self.db.execute(
                "SELECT provider FROM vaults WHERE number = ?", (vault,)
            ).fetchone()
            if row is not None:
                self._touch(row[0], index)  # the previous host sees a vault leave
            if row is None:
                self.db.execute(
                    "INSERT INTO vaults (number, provider, status, last_index) VALUES (?, ?, ?, ?)",
                    (vault, provider, "active", index),
                )
            elif provider:
                self.db.execute(
                    "UPDATE vaults SET provider = ?, last_index = ? WHERE number = ?",
                    (provider, index, vault),
                )
            if kind == "vault.closed":
                self.db.execute("UPDATE vaults SET status = 'closed' WHERE number = ?", (vault,))
            elif kind in ("vault.held", "vault.released") and entry.get("hold") in (
                "client_hold",
                "server_hold",
            ):
                value = 1 if kind == "vault.held" else 0
                self.db.execute(
                    f"UPDATE vaults SET {entry['hold']} = ? WHERE number = ?",  # noqa: S608
                    (value, vault),
                )
            return
        if kind == "provider.status":
            self.db.execute(
                "INSERT INTO providers (id, status, legal_name, legal_id, last_index) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
                "legal_name = excluded.legal_name, legal_id = excluded.legal_id, "
                "last_index = excluded.last_index",
                (
                    provider,
                    entry.get("status"),
                    entry.get("legal_name"),
                    entry.get("legal_id"),
                    index,
                ),
            )
        elif kind == "endpoint.published":
            self.db.execute(
                "INSERT OR REPLACE INTO endpoints VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (
                    entry.get("endpoint"),
                    provider,
                    entry.get("url"),
                    entry.get("transport_profile"),
                    entry.get("activates_at"),
                    entry.get("expires_at"),
                ),
            )
        elif kind == "endpoint.deactivated":
            self.db.execute(
                "UPDATE endpoints SET deactivated_at = ? WHERE id = ?", (at, entry.get("endpoint"))
            )
        elif kind == "certificate.published":
            self.db.execute(
                "INSERT OR REPLACE INTO certificates VALUES (?, ?, ?, ?, ?, ?, NULL)",
                (
                    entry.get("certificate"),
                    provider,
                    entry.get("use"),
                    entry.get("fingerprint_sha256"),
                    entry.get("not_before"),
                    entry.get("not_after"),
                ),
            )
        elif kind == "certificate.retired":
            self.db.execute(
                "UPDATE certificates SET retired_at = ? WHERE id = ?",
                (at, entry.get("certificate")),
            )

    # --- Offline answers --------------------------------------------------------------------

    def resolve(self, number: str, at: str | None = None) -> dict[str, Any]:
        """Where ``number`` routes according to the mirror, with the registry's reasons."""
        at = at or now_stamp()
        row = self.db.execute(
            "SELECT provider, status, client_hold, server_hold, last_index FROM vaults "
            "WHERE number = ?",
            (number,),
        ).fetchone()
        if row is None:
            return {"number": number, "found": False}
        provider_id, status, client_hold, server_hold, last_index = row
        provider = self.db.execute(
            "SELECT status, legal_name, legal_id FROM providers WHERE id = ?", (provider_id,)
        ).fetchone() or (None, None, None)
        endpoints = [
            url
            for (url,) in self.db.execute(
                "SELECT url FROM endpoints WHERE provider = ? AND activates_at <= ? "
                "AND (expires_at IS NULL OR expires_at > ?) "
                "AND (deactivated_at IS NULL OR deactivated_at > ?) ORDER BY rowid",
                (provider_id, at, at, at),
            )
        ]
        fingerprints = [
            fp
            for (fp,) in self.db.execute(
                "SELECT fingerprint FROM certificates WHERE provider = ? AND use = 'encryption' "
                "AND not_before <= ? AND not_after > ? "
                "AND (retired_at IS NULL OR retired_at > ?) ORDER BY not_after, rowid",
                (provider_id, at, at, at),
            )
        ]
        reasons = []
        if status == "closed":
            reasons.append("closed")
        if client_hold or server_hold:
            reasons.append("hold")
        if provider[0] != "active":
            reasons.append(
                "provider_withdrawn" if provider[0] == "withdrawn" else "provider_suspended"
            )
        if not endpoints:
            reasons.append("no_endpoint")
        if not fingerprints:
            reasons.append("no_valid_certificate")
        return {
            "number": number,
            "found": True,
            "status": status,
            "deliverable": not reasons,
            "reasons": reasons,
            "provider": {
                "id": provider_id,
                "status": provider[0],
                "legal_name": provider[1],
                "legal_id": provider[2],
            },
            "endpoints": endpoints,
            "certificate_fingerprints": fingerprints,
            "log_index": last_index,
        }

    def monitor(self, provider: str, *, advance: bool = True) -> list[tuple[int, dict[str, Any]]]:
        """Entries naming ``provider`` or moving one of its vaults, since the last run."""
        row = self.db.execute(
            "SELECT last_index FROM monitor_marks WHERE provider = ?", (provider,)
        ).fetchone()
        mark = row[0] if row else -1
        rows = self.db.execute(
            "SELECT l.idx, l.body FROM touches t JOIN leaves l ON l.idx = t.idx "
            "WHERE t.provider = ? AND t.idx > ? ORDER BY l.idx",
            (provider, mark),
        ).fetchall()
        if advance:
            last = max(self.size() - 1, mark)
            self.db.execute(
                "INSERT OR REPLACE INTO monitor_marks (provider, last_index) VALUES (?, ?)",
                (provider, last),
            )
        return [(index, json.loads(body)) for index, body in rows]


def read_numbers(lines: Iterable[str]) -> list[str]:
    return [compact(line) for line in lines if line.strip() and not line.startswith("#")]
