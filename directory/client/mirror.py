"""A verified local mirror of the log in SQLite: it replays the entries into its own state map.

``sync`` follows the registry's checkpoints: each new one must be trusted (pinned key, age,
witnesses) and consistent with the last one mirrored (RFC 9162 consistency proof); every entry
tile the mirror already holds is fetched again and must be unchanged (a registry that rewrites
an old entry is caught by the mirrors that hold it, not only by new ones); the new entries must
hash to the checkpoint's log root; and replaying their records into the mirror's own state map
must give exactly the checkpoint's map root. Anything else is refused and nothing is written.

Offline answers (``resolve``) and monitors are computed from the replayed records with the same
functions the registry and the lookup verification use (``directory.transparency.records``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from directory.client import http
from directory.client.errors import Inconsistent, ProofMismatch, RolledBack, Tampered
from directory.client.verify import Trust, check_consistent, check_trusted, verify_records
from directory.transparency import merkle, statemap, tiles
from directory.transparency import records as rec
from registry.numbers import compact

SCHEMA = """
CREATE TABLE IF NOT EXISTS leaves (idx INTEGER PRIMARY KEY, hash BLOB NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS frontier (pos INTEGER PRIMARY KEY, level INTEGER, hash BLOB);
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY, root BLOB NOT NULL, map_root BLOB, note TEXT NOT NULL,
    seen_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (key TEXT PRIMARY KEY, record TEXT NOT NULL, idx INTEGER);
CREATE TABLE IF NOT EXISTS map_nodes (
    node BLOB PRIMARY KEY, hash BLOB NOT NULL, leaf_path BLOB, leaf_value BLOB);
CREATE TABLE IF NOT EXISTS touches (key TEXT, idx INTEGER, PRIMARY KEY (key, idx));
CREATE TABLE IF NOT EXISTS monitor_marks (key TEXT PRIMARY KEY, last_index INTEGER);
"""

Progress = Callable[[int, int], None]


def now_stamp() -> str:
    """Now, in the log's time format (RFC 3339 UTC with microseconds), comparable as text."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def watched_key(provider: str | None = None, vault: str | None = None) -> str:
    """The map key a monitor follows: a provider's, or a vault's (for its holder)."""
    return rec.provider_key(provider) if provider else rec.vault_key(compact(vault or ""))


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

    def record(self, key: str) -> rec.Record | None:
        row = self.db.execute("SELECT record FROM records WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def map_root(self) -> bytes:
        row = self.db.execute(
            "SELECT hash FROM map_nodes WHERE node = ?", (statemap.node_id(0, b""),)
        ).fetchone()
        return bytes(row[0]) if row else statemap.EMPTY

    # --- Sync -------------------------------------------------------------------------------

    def sync(
        self, registry: http.Registry, trust: Trust, progress: Progress | None = None
    ) -> tuple[int, int]:
        """Mirror up to the registry's latest checkpoint; returns (old size, new size)."""
        checkpoint, _cosigners = check_trusted(registry.checkpoint(), trust, now=time.time())
        latest = self.latest()
        try:
            return self._follow(registry, checkpoint, latest, progress)
        except Inconsistent as exc:
            if latest is None:
                raise
            folder = self._keep_evidence(latest[2], checkpoint.note, type(exc).__name__.lower())
            raise type(exc)(f"{exc.args[0]}; evidence kept in {folder}") from exc

    def _keep_evidence(self, seen: str, served: str, reason: str) -> Path:
        """Both signed notes of a conflict, next to the mirror: together they prove it."""
        folder = self.path.with_name(self.path.name + ".evidence") / f"{int(time.time())}-{reason}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "seen.note").write_text(seen)
        (folder / "served.note").write_text(served)
        return folder

    def _follow(self, registry, checkpoint, latest, progress) -> tuple[int, int]:
        old_size = latest[0] if latest else 0
        if latest is not None and checkpoint.size < old_size:
            raise RolledBack(
                f"the registry serves a checkpoint of size {checkpoint.size}, smaller than the "
                f"{old_size} entries already mirrored: the log was truncated or rolled back"
            )
        check_consistent(latest[:2] if latest else None, checkpoint, registry.consistency_proof)
        if checkpoint.size == old_size:
            return old_size, old_size
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self._recheck(registry, old_size)
            frontier = self._frontier()
            touched: dict[str, tuple[rec.Record, int]] = {}
            first_tile = old_size // tiles.TILE_WIDTH
            for tile in range(first_tile, -(-checkpoint.size // tiles.TILE_WIDTH)):
                start = tile * tiles.TILE_WIDTH
                width = min(tiles.TILE_WIDTH, checkpoint.size - start)
                self._sync_tile(registry, tile, start, width, old_size, frontier, touched)
                if progress:
                    progress(start + width - old_size, checkpoint.size - old_size)
            root = merkle.root_from_frontier([digest for _level, digest in frontier])
            if root != checkpoint.root:
                raise Inconsistent(
                    f"the log's entries do not hash to the root of checkpoint {checkpoint.size}"
                )
            map_root = self._replay(touched)
            if map_root != checkpoint.map_root:
                raise Inconsistent(
                    f"replaying the log gives another state map than checkpoint "
                    f"{checkpoint.size} signs: the registry's answers are not what its log says"
                )
            self.db.execute("DELETE FROM frontier")
            self.db.executemany(
                "INSERT INTO frontier (pos, level, hash) VALUES (?, ?, ?)",
                [(pos, level, digest) for pos, (level, digest) in enumerate(frontier)],
            )
            self.db.execute(
                "INSERT INTO checkpoints (size, root, map_root, note, seen_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    checkpoint.size,
                    checkpoint.root,
                    checkpoint.map_root,
                    checkpoint.note,
                    now_stamp(),
                ),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return old_size, checkpoint.size

    def _recheck(self, registry: http.Registry, old_size: int) -> None:
        """Fetch again every entry tile already mirrored: each entry must be unchanged."""
        for tile in range(-(-old_size // tiles.TILE_WIDTH)):
            start = tile * tiles.TILE_WIDTH
            width = min(tiles.TILE_WIDTH, old_size - start)
            bodies = tiles.split_bundle(registry.entries(tile, width))
            known = self.db.execute(
                "SELECT hash FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx",
                (start, start + width),
            ).fetchall()
            if len(bodies) != width or [merkle.leaf_hash(b) for b in bodies] != [
                bytes(h) for (h,) in known
            ]:
                raise Inconsistent(
                    f"the registry now serves other entries in tile {tile} than it did: "
                    "an old log entry was rewritten"
                )

    def _sync_tile(self, registry, tile, start, width, old_size, frontier, touched) -> None:
        bodies = tiles.split_bundle(registry.entries(tile, width))
        hashes = registry.tile(0, tile, width)
        if len(bodies) != width or len(hashes) != 32 * width:
            raise Tampered(f"tile {tile} does not hold {width} entries")
        for offset, body in enumerate(bodies):
            index = start + offset
            digest = merkle.leaf_hash(body)
            if digest != hashes[32 * offset : 32 * offset + 32]:
                raise Inconsistent(f"entry {index} does not hash to its leaf in the signed tree")
            if index < old_size:
                continue
            self.db.execute(
                "INSERT INTO leaves (idx, hash, body) VALUES (?, ?, ?)", (index, digest, body)
            )
            merkle.push_leaf(frontier, digest)
            entry = json.loads(body)
            for record in rec.entry_records(entry):
                key = rec.key_of(record)
                touched[key] = (record, index)
                self._touch(key, index)
                if record.get("type") == rec.VAULT:  # the vault's hosts see it come and go
                    old = self.record(key)
                    for provider in {record["provider"], (old or {}).get("provider")} - {None}:
                        self._touch(rec.provider_key(provider), index)

    def _touch(self, key: str, index: int) -> None:
        self.db.execute("INSERT OR IGNORE INTO touches VALUES (?, ?)", (key, index))

    def _replay(self, touched: dict[str, tuple[rec.Record, int]]) -> bytes:
        """Apply the new records to the mirror's own state map; returns its new root."""
        if not touched:
            return self.map_root()
        paths = {statemap.path_of(key): key for key in touched}
        tree = statemap.PartialTree.load(list(paths), self._fetch_nodes)
        for path, key in paths.items():
            record, index = touched[key]
            tree.set(path, rec.value_of(record))
            self.db.execute(
                "INSERT OR REPLACE INTO records (key, record, idx) VALUES (?, ?, ?)",
                (key, json.dumps(record, sort_keys=True), index),
            )
        self.db.executemany(
            "INSERT OR REPLACE INTO map_nodes (node, hash, leaf_path, leaf_value) "
            "VALUES (?, ?, ?, ?)",
            [(n.node_id, n.hash, n.leaf_path, n.leaf_value) for n in tree.changed_nodes()],
        )
        return tree.root()

    def _fetch_nodes(self, ids: list[bytes]) -> dict[bytes, statemap.StoredNode]:
        found = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = self.db.execute(
                "SELECT node, hash, leaf_path, leaf_value FROM map_nodes "  # noqa: S608
                f"WHERE node IN ({', '.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            for node, digest, leaf_path, leaf_value in rows:
                stored = statemap.StoredNode.from_row(node, digest, leaf_path, leaf_value)
                found[stored.node_id] = stored
        return found

    # --- Offline answers --------------------------------------------------------------------

    def resolve(
        self, number: str, at: str | None = None, purpose: str | None = None
    ) -> dict[str, Any]:
        """Where ``number`` routes according to the mirror, with the registry's reasons (for
        ``purpose``: the endpoints accepting its document type)."""
        at = at or now_stamp()
        vault = self.record(rec.vault_key(number))
        if vault is None:
            return {"number": number, "found": False}
        provider = self.record(rec.provider_key(vault["provider"]))
        answer: dict[str, Any] = {"number": number, "found": True, "status": vault["status"]}
        if provider is None:
            return answer | {"deliverable": False, "reasons": [rec.placement(vault, None, at)]}
        fields = rec.lookup_fields(vault, provider, at, purpose)
        return answer | {
            "deliverable": fields["deliverable"],
            "reasons": fields["reasons"],
            "provider": fields["provider"],
            "endpoints": [e["url"] for e in fields["endpoints"]],
            "certificate_fingerprints": [
                c["fingerprint_sha256"] for c in fields["encryption_certificates"]
            ],
        }

    # --- Monitors ---------------------------------------------------------------------------

    def monitor(self, key: str, *, advance: bool = True) -> list[tuple[int, dict[str, Any]]]:
        """Entries touching ``key`` (a provider's: its records, and its vaults coming and
        going; a vault's: its records) since the last run."""
        row = self.db.execute(
            "SELECT last_index FROM monitor_marks WHERE key = ?", (key,)
        ).fetchone()
        mark = row[0] if row else -1
        rows = self.db.execute(
            "SELECT l.idx, l.body FROM touches t JOIN leaves l ON l.idx = t.idx "
            "WHERE t.key = ? AND t.idx > ? ORDER BY l.idx",
            (key, mark),
        ).fetchall()
        if advance:
            last = max(self.size() - 1, mark)
            self.db.execute(
                "INSERT OR REPLACE INTO monitor_marks (key, last_index) VALUES (?, ?)",
                (key, last),
            )
        return [(index, json.loads(body)) for index, body in rows]

    def watched_keys(self, key: str) -> list[str]:
        """``key``, and for a provider every vault the log says it hosts or hosted."""
        if not key.startswith(f"{rec.PROVIDER}:"):
            return [key]
        provider = key.partition(":")[2]
        rows = self.db.execute(
            "SELECT DISTINCT t.key FROM touches p JOIN touches t ON t.idx = p.idx "
            "WHERE p.key = ? AND t.key LIKE 'vault:%' ORDER BY t.key",
            (rec.provider_key(provider),),
        ).fetchall()
        return [key, *(vault for (vault,) in rows)]

    def contradictions(self, key: str, fetch_state) -> list[str]:
        """What the registry answers online for ``key`` (and a provider's vaults) at the
        mirror's checkpoint, compared with the mirror's own replay: a list of alerts (empty
        when they agree)."""
        latest = self.latest()
        if latest is None:
            return []
        row = self.db.execute(
            "SELECT map_root FROM checkpoints WHERE size = ?", (latest[0],)
        ).fetchone()
        keys = self.watched_keys(key)
        online = fetch_state(latest[0], keys)
        records = online.get("records") or {}
        alerts = []
        try:
            verify_records(
                bytes(row[0]), online.get("proof", ""), records | {k: records.get(k) for k in keys}
            )
        except ProofMismatch as exc:
            alerts.append(f"the registry's online proof of {key} does not verify: {exc}")
        for watched in keys:
            if records.get(watched) != self.record(watched):
                alerts.append(
                    f"the registry answers online a record of {watched} that its log does not "
                    f"give at checkpoint {latest[0]}"
                )
        return alerts


def read_numbers(lines: Iterable[str]) -> list[str]:
    return [compact(line) for line in lines if line.strip() and not line.startswith("#")]
