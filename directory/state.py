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

import time
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


_BULK = 5_000  # keys from which PostgreSQL reads by one set-based scan rather than per-key probes
_TOP_DEPTH = 12  # map nodes above this depth are cached per process and version (4,095 at most)
_top_nodes: dict[int, dict[bytes, statemap.StoredNode | None]] = {}


def _latest_sql(table: str, key_column: str, columns: str, kind: str, bulk: bool) -> str:
    """PostgreSQL: each key's row with the highest version at or below the second parameter.

    A few keys: a LATERAL index probe per key (``version <= v ORDER BY version DESC LIMIT 1``).
    Many keys (a routing plan's 100,000 numbers, their state proof's million nodes): the rows of
    all the keys are read in one set-based pass (the planner's choice of hash join or index scan
    over the sorted keys) and the newest version of each kept with DISTINCT ON, three times
    faster than the probes for a 100,000-key proof. It reads every version at or below ``v``, so
    it serves keys with few versions: records, and map nodes near the leaves (``_latest_rows``).
    """
    if bulk:
        return (
            f"SELECT DISTINCT ON (x.{key_column}) x.{key_column}, x.version, {columns} "  # noqa: S608
            f"FROM {table} x WHERE x.{key_column} = ANY(%s::{kind}[]) AND x.version <= %s "
            f"ORDER BY x.{key_column}, x.version DESC"
        )
    return (
        f"SELECT q.k, t.version, {columns} FROM unnest(%s::{kind}[]) AS q(k) "  # noqa: S608
        f"CROSS JOIN LATERAL (SELECT * FROM {table} x WHERE x.{key_column} = q.k "
        f"AND x.version <= %s ORDER BY x.version DESC LIMIT 1) t"
    )


_root_counts: dict[int, int] = {}


def _root_versions(connection, version: int) -> int:
    """How many versions the map's root has at or below ``version`` (one per update of the map
    since it was last rebuilt; cached per process and version)."""
    if (count := _root_counts.get(version)) is None:
        if len(_root_counts) > 64:
            _root_counts.clear()
        sql = f"SELECT count(*) FROM {MapNode._meta.db_table} WHERE node = %s AND version <= %s"  # noqa: S608
        [(count,)] = _binary_read(connection, sql, [statemap.node_id(0, b""), version])
        _root_counts[version] = count
    return count


def _kind(key_column: str) -> str:
    return "bytea" if key_column == "node" else "text"


def _binary_read(connection, sql: str, params: list) -> list[tuple]:
    """Run a read with its parameters sent in binary (psycopg's ``%b``), rows back in binary.

    Django's cursor sends parameters in text: every node id of a proof is escaped into bytea's
    text form and the array of them quoted element by element (half of a lookup's CPU time; for
    a 100,000-key proof, 8 s), and the rows come back as hex to decode. Same connection, same
    transaction, and the connection's prepared statements. Recorded in Django's query log when
    it is on (tests count queries through it)."""
    import psycopg

    connection.ensure_connection()
    started = time.perf_counter()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql.replace("%s", "%b"), params, binary=True)
        rows = cursor.fetchall()
    if connection.queries_logged:
        took = time.perf_counter() - started
        connection.queries_log.append({"sql": sql, "time": f"{took:.3f}"})
    return rows


def _latest_rows(table: str, key_column: str, columns: str, keys: Sequence[Any], version: int):
    """For each key, its row with the highest version at or below ``version``: one query on
    PostgreSQL (``_latest_sql``, bound on the server), one per chunk on SQLite (its bare columns
    of max())."""
    if not keys:
        return []
    rows: list[tuple] = []
    connection = connections[reading()]  # the replica for the read side (registry.routers)
    if connection.vendor == "postgresql":
        kind = _kind(key_column)
        probed, scanned = list(keys), []
        if len(keys) >= _BULK:
            probed, scanned = [], probed
            if key_column == "node":
                # A node has a version per write below it: those of the top levels, thousands
                # in a registry that has lived, would all be read by the set-based pass. It
                # reads only the levels where nodes have about 16 versions or fewer (the root's
                # count halves at each level below it); above them, one probe per node.
                shallow = _root_versions(connection, version).bit_length() - 4
                probed = [k for k in scanned if int.from_bytes(k[:2], "big") < shallow]
                scanned = [k for k in scanned if int.from_bytes(k[:2], "big") >= shallow]
        if probed:
            sql = _latest_sql(table, key_column, columns, kind, False)
            rows += _binary_read(connection, sql, [probed, version])
        if scanned:
            sql = _latest_sql(table, key_column, columns, kind, True)
            rows += _binary_read(connection, sql, [scanned, version])
        return rows
    with connection.cursor() as cursor:
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


_NODE_COLUMNS = "hash, leaf_path, leaf_value"


def _nodes(rows) -> dict[bytes, statemap.StoredNode]:
    found = {}
    for node, _version, digest, leaf_path, leaf_value in rows:
        stored = statemap.StoredNode.from_row(node, digest, leaf_path, leaf_value)
        found[stored.node_id] = stored
    return found


def _fetch(version: int, first=None, *, cache: bool = False):
    """The storage callback of ``PartialTree.load``: stored nodes as of ``version``.

    The nodes of the map's top levels are the same for every lookup at one checkpoint: with
    ``cache``, below ``LATEST`` (stored versions never change), they are kept per process, for
    the last few versions asked. Only the answers use it; what checks the database before
    signing (``checkpoints.verified_roots``) always reads it. ``first``, if given, answers the
    first call instead of a query (see ``evidence``)."""
    table = MapNode._meta.db_table
    cached = cache and version != LATEST

    def fetch(ids: list[bytes]) -> dict[bytes, statemap.StoredNode]:
        nonlocal first
        known: dict[bytes, statemap.StoredNode | None] = {}
        if cached:
            known = _top_nodes.get(version)  # type: ignore[assignment]
            if known is None:
                if len(_top_nodes) >= 4:
                    _top_nodes.clear()
                known = _top_nodes[version] = {}
        found: dict[bytes, statemap.StoredNode] = {}
        ask = []
        for node_id in ids:
            if node_id in known:
                if (hit := known[node_id]) is not None:
                    found[node_id] = hit
            else:
                ask.append(node_id)
        if first is not None:
            fetched, first = first(ask), None
        else:
            fetched = _nodes(_latest_rows(table, "node", _NODE_COLUMNS, ask, version))
        found |= fetched
        if cached:
            for node_id in ask:
                if int.from_bytes(node_id[:2], "big") < _TOP_DEPTH:
                    known[node_id] = fetched.get(node_id)
        return found

    return fetch


def clear_cache() -> None:
    _top_nodes.clear()
    _root_counts.clear()


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
    # A write of a few records reads their paths in one round (a million-key map is ~21 deep).
    lookahead = _depth_bound(version) if len(paths) <= 16 else 8
    tree = statemap.PartialTree.load(list(paths), _fetch(LATEST), lookahead=lookahead)
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
    found = _fetch(version)([node])
    return found[node].hash if node in found else statemap.EMPTY


def records_at(keys: Sequence[str], version: int = LATEST) -> dict[str, bytes]:
    """The canonical bytes of each key's record as of ``version``; keys without one are absent."""
    rows = _latest_rows(StateRecord._meta.db_table, "key", "record", list(keys), version)
    return {key: bytes(data) for key, _version, data in rows}


def decoded_at(keys: Sequence[str], version: int = LATEST) -> dict[str, rec.Record]:
    return {key: orjson.loads(data) for key, data in records_at(keys, version).items()}


def _depth_bound(version: int) -> int:
    """How deep a proof's first round reads: a map of N keys puts a leaf about log2(N) levels
    down, rarely more than a few below; the log size bounds N (every key has an entry)."""
    return max(version, 2).bit_length() + 6


def prove(keys: Sequence[str], version: int) -> bytes:
    """A multiproof of these keys (present or absent) in the map as of ``version``."""
    paths = [statemap.path_of(key) for key in keys]
    # One path: its nodes down to a depth beyond its leaf's, almost always, in one query.
    lookahead = _depth_bound(version) if len(paths) == 1 else 8
    return statemap.PartialTree.load(paths, _fetch(version), lookahead=lookahead).encode(paths)


def evidence(key: str, version: int) -> tuple[bytes | None, bytes]:
    """One key's record bytes (None: absent) and its path proof (``PartialTree.encode_path``)
    as of ``version``: on PostgreSQL the record and the proof's first round of nodes come back
    from one query."""
    path = statemap.path_of(key)
    connection = connections[reading()]
    record: bytes | None = None
    first = None
    if connection.vendor == "postgresql":
        # The record's row (its first column NULL) and the proof's nodes, in one statement.
        sql = (
            "SELECT NULL::bytea, t.version, t.record, NULL::bytea, NULL::bytea "  # noqa: S608
            f"FROM (SELECT * FROM {StateRecord._meta.db_table} x WHERE x.key = %s "
            "AND x.version <= %s ORDER BY x.version DESC LIMIT 1) t UNION ALL "
            + _latest_sql(MapNode._meta.db_table, "node", _NODE_COLUMNS, "bytea", False)
        )

        def first(ids: list[bytes]) -> dict[bytes, statemap.StoredNode]:
            nonlocal record
            rows = _binary_read(connection, sql, [key, version, ids, version])
            record = next((bytes(row[2]) for row in rows if row[0] is None), None)
            return _nodes(row for row in rows if row[0] is not None)

    else:
        record = records_at([key], version).get(key)
    fetch = _fetch(version, first, cache=True)
    tree = statemap.PartialTree.load([path], fetch, lookahead=_depth_bound(version))
    return record, tree.encode_path(path)

    def first(ids: list[bytes]) -> dict[bytes, statemap.StoredNode]:
        sql = (
            "SELECT 0, NULL::bytea, t.version, t.record, NULL::bytea, NULL::bytea "  # noqa: S608
            f"FROM (SELECT * FROM {StateRecord._meta.db_table} x WHERE x.key = %s "
            "AND x.version <= %s ORDER BY x.version DESC LIMIT 1) t UNION ALL "
            "SELECT 1, q.k, t.version, t.hash, t.leaf_path, t.leaf_value "
            "FROM unnest(%s::bytea[]) AS q(k) CROSS JOIN LATERAL "
            f"(SELECT * FROM {MapNode._meta.db_table} x WHERE x.node = q.k "
            "AND x.version <= %s ORDER BY x.version DESC LIMIT 1) t"
        )
        rows = _binary_read(connection, sql, [key, version, ids, version])
        record[0] = next((bytes(r[3]) for r in rows if r[0] == 0), None)
        return _nodes(r[1:] for r in rows if r[0] == 1)

    fetch = _fetch(version, first, cache=True)
    tree = statemap.PartialTree.load([path], fetch, lookahead=_depth_bound(version))
    return record[0], tree.encode_path(path)
