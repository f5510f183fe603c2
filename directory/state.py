"""The stored state map: records and map nodes per log size, written with the log append.

Each append that carries records (``registry.services.common.append_log_many``) calls ``apply``
in its own transaction: the new records are stored under the log size after the append (their
*version*), and the map nodes along their paths are rewritten under that version through
``statemap.PartialTree``. Nothing is overwritten, so the map at any checkpoint's size can be read
and proven later (``records_at``, ``prove``, ``root``). Appends are serialised by the log head's
row lock, so versions only grow.

Everything here is derived from the log: ``rebuild_state_map`` recomputes it from the entries
alone and compares.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from django.db import connections

from directory.models import MapNode, StateRecord
from directory.transparency import records as rec
from directory.transparency import statemap
from registry.routers import reading

LATEST = (1 << 63) - 1  # a version above every real one: "the current state"
_CHUNK = 500  # ids per query on SQLite (its bound-parameter limit)


def _latest_rows(table: str, key_column: str, columns: str, keys: Sequence[Any], version: int):
    """For each key, its row with the highest version at or below ``version`` (one query per
    chunk): a LATERAL index probe per key on PostgreSQL, SQLite's bare columns of max()."""
    if not keys:
        return []
    rows: list[tuple] = []
    connection = connections[reading()]  # the replica for the read side (registry.routers)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            kind = "bytea" if key_column == "node" else "text"
            cursor.execute(
                f"SELECT q.k, t.version, {columns} FROM unnest(%s::{kind}[]) AS q(k) "  # noqa: S608
                f"CROSS JOIN LATERAL (SELECT * FROM {table} x WHERE x.{key_column} = q.k "
                f"AND x.version <= %s ORDER BY x.version DESC LIMIT 1) t",
                [list(keys), version],
            )
            rows = cursor.fetchall()
        else:
            for start in range(0, len(keys), _CHUNK):
                chunk = list(keys[start : start + _CHUNK])
                marks = ", ".join(["%s"] * len(chunk))
                cursor.execute(
                    f"SELECT {key_column}, max(version), {columns} FROM {table} "  # noqa: S608
                    f"WHERE {key_column} IN ({marks}) AND version <= %s GROUP BY {key_column}",
                    [*chunk, version],
                )
                rows += cursor.fetchall()
    return rows


def _fetch(version: int):
    """The storage callback of ``PartialTree.load``: stored nodes as of ``version``."""
    table = MapNode._meta.db_table

    def fetch(ids: list[bytes]) -> dict[bytes, statemap.StoredNode]:
        found = {}
        for node, _version, digest, leaf_path, leaf_value in _latest_rows(
            table, "node", "hash, leaf_path, leaf_value", ids, version
        ):
            stored = statemap.StoredNode.from_row(node, digest, leaf_path, leaf_value)
            found[stored.node_id] = stored
        return found

    return fetch


def apply(version: int, records: Iterable[rec.Record]) -> bytes | None:
    """Store these records (the last per key wins) and the map nodes they change, as of log
    size ``version``; returns the new map root (None when there is no record: no query).
    Runs in the append's transaction."""
    latest: dict[str, bytes] = {}
    for record in records:
        latest[rec.key_of(record)] = rec.record_bytes(record)
    if not latest:
        return None
    paths = {statemap.path_of(key): data for key, data in latest.items()}
    tree = statemap.PartialTree.load(list(paths), _fetch(LATEST))
    for path, data in paths.items():
        tree.set(path, statemap.value_of(data))
    MapNode.objects.bulk_create(
        [
            MapNode(
                node=node.node_id,
                version=version,
                hash=node.hash,
                leaf_path=node.leaf_path,
                leaf_value=node.leaf_value,
            )
            for node in tree.changed_nodes()
        ],
        batch_size=2000,
    )
    StateRecord.objects.bulk_create(
        [StateRecord(key=key, version=version, record=data) for key, data in latest.items()],
        batch_size=2000,
    )
    return tree.root()


def root(version: int = LATEST) -> bytes:
    """The map root as of log size ``version``."""
    node = statemap.node_id(0, b"")
    rows = _latest_rows(MapNode._meta.db_table, "node", "hash", [node], version)
    return bytes(rows[0][2]) if rows else statemap.EMPTY


def records_at(keys: Sequence[str], version: int = LATEST) -> dict[str, bytes]:
    """The canonical bytes of each key's record as of ``version``; keys without one are absent."""
    rows = _latest_rows(StateRecord._meta.db_table, "key", "record", list(keys), version)
    return {key: bytes(data) for key, _version, data in rows}


def decoded_at(keys: Sequence[str], version: int = LATEST) -> dict[str, rec.Record]:
    return {key: orjson.loads(data) for key, data in records_at(keys, version).items()}


def prove(keys: Sequence[str], version: int) -> bytes:
    """A multiproof of these keys (present or absent) in the map as of ``version``."""
    paths = [statemap.path_of(key) for key in keys]
    # One path: its nodes down to depth 40 in one query (a 10-million-key map is ~24 deep).
    lookahead = 40 if len(paths) == 1 else 8
    return statemap.PartialTree.load(paths, _fetch(version), lookahead=lookahead).encode(paths)
