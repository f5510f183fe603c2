"""Recompute the state map from the log alone; build it, or say where the stored one differs."""

from __future__ import annotations

import json
import sys
import time

import orjson
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from directory import checkpoints, state
from directory.models import Checkpoint, MapNode, StateRecord
from directory.transparency import records as rec
from directory.transparency import statemap
from registry.models import LogEntry


class Command(BaseCommand):
    help = (
        "Replay every log entry's records into a state map. With --verify, compare it with the "
        "stored map (records and root, now and at the latest checkpoint) and list the "
        "differences; without, build the stored map of a registry that has none (e.g. after a "
        "bulk load), as of the log's size."
    )

    def add_arguments(self, parser):
        parser.add_argument("--verify", action="store_true", help="Compare, change nothing.")

    def handle(self, *args, verify: bool = False, **options):
        started = time.monotonic()
        size = checkpoints.log_size()
        latest = Checkpoint.objects.filter(size__lte=size).first()
        replayed, at_checkpoint = self._replay(size, latest.size if latest else None)
        self.stdout.write(
            f"replayed {size} entries: {len(replayed)} records ({time.monotonic() - started:.1f} s)"
        )
        if verify:
            differences = self._verify(replayed, size, latest, at_checkpoint)
            if differences:
                for line in differences[:50]:
                    self.stdout.write(f"DIFFERS: {line}")
                raise CommandError(f"{len(differences)} differences between the log and the map")
            self.stdout.write(self.style.SUCCESS("the stored state map is what the log gives"))
            return
        if StateRecord.objects.exists() or MapNode.objects.exists():
            raise CommandError("The state map is not empty: use --verify to compare it.")
        self._build(replayed, size)
        self.stdout.write(
            f"built the state map at size {size} ({time.monotonic() - started:.1f} s); "
            "publish a checkpoint to sign it"
        )

    def _replay(self, size: int, checkpoint_size: int | None):
        """Every key's last record (canonical bytes), and the root as of the checkpoint."""
        latest: dict[str, bytes] = {}
        at_checkpoint = None
        rows = LogEntry.objects.filter(sequence__lt=size).order_by("sequence")
        entries = rows.values_list("sequence", "body").iterator(chunk_size=5000)
        for done, (sequence, body) in enumerate(entries, 1):
            if sequence == checkpoint_size:
                at_checkpoint = self._root(latest)
            for record, data in _records_with_bytes(bytes(body)):
                latest[rec.key_of(record)] = data
            if done % 100_000 == 0:
                self._progress(done, size)
        if checkpoint_size == size:
            at_checkpoint = self._root(latest)
        return latest, at_checkpoint

    def _progress(self, done: int, total: int) -> None:
        end = "\r" if sys.stdout.isatty() else "\n"
        self.stdout.write(f"  {done}/{total} entries", ending=end)

    @staticmethod
    def _root(latest: dict[str, bytes]) -> bytes:
        return statemap.root_of(
            (statemap.path_of(key), statemap.value_of(data)) for key, data in latest.items()
        )

    def _verify(self, replayed, size, latest, at_checkpoint) -> list[str]:
        differences = []
        stored = {
            key: bytes(data)
            for key, data in state.records_at(
                list(replayed.keys() | set(StateRecord.objects.values_list("key", flat=True))),
                size,
            ).items()
        }
        for key in sorted(replayed.keys() | stored.keys()):
            if replayed.get(key) != stored.get(key):
                differences.append(f"{key}: the stored record is not the log's")
        root = self._root(replayed)
        if root != state.root(size):
            differences.append(f"map root at size {size}: stored differs from the log's")
        if latest is not None and at_checkpoint != bytes(latest.map_root):
            differences.append(f"map root signed at size {latest.size} is not the log's")
        return differences

    @transaction.atomic
    def _build(self, replayed: dict[str, bytes], size: int) -> None:
        if connection.vendor == "postgresql":
            self._copy(replayed, size)
            return
        _root, nodes = statemap.build(
            (statemap.path_of(key), statemap.value_of(data)) for key, data in replayed.items()
        )
        MapNode.objects.bulk_create(
            (
                MapNode(
                    node=n.node_id,
                    version=size,
                    hash=n.hash,
                    leaf_path=n.leaf_path,
                    leaf_value=n.leaf_value,
                )
                for n in nodes
            ),
            batch_size=5000,
        )
        StateRecord.objects.bulk_create(
            (StateRecord(key=k, version=size, record=v) for k, v in replayed.items()),
            batch_size=5000,
        )

    def _copy(self, replayed: dict[str, bytes], size: int) -> None:
        """The same rows as ``_build`` writes, by binary COPY, the nodes streamed from the tree
        as it is built (ten million vaults make about 24 million nodes: never all in memory)."""
        records, nodes = StateRecord._meta.db_table, MapNode._meta.db_table
        with connection.cursor() as cursor:
            raw = cursor.cursor
            with raw.copy(
                f"COPY {records} (key, version, record) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["varchar", "int8", "bytea"])
                for key, data in replayed.items():
                    copy.write_row((key, size, data))
            with raw.copy(
                f"COPY {nodes} (node, version, hash, leaf_path, leaf_value) "
                "FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types(["bytea", "int8", "bytea", "bytea", "bytea"])
                write = copy.write_row

                def sink(batch: list[statemap.StoredNode]) -> None:
                    for n in batch:
                        write((n.node_id, size, n.hash, n.leaf_path, n.leaf_value))

                statemap.build_batches(
                    (
                        (statemap.path_of(key), statemap.value_of(data))
                        for key, data in replayed.items()
                    ),
                    sink,
                )


def _records_with_bytes(body: bytes) -> list[tuple[rec.Record, bytes]]:
    """The records an entry carries, each with its RFC 8785 bytes (``records.record_bytes``,
    whose short cut makes most of them ten times faster than ``rfc8785``). An ASCII entry with no
    escape is read with orjson; anything else with ``json`` (the reader the services' tests
    compare against)."""
    entry = None
    if body.isascii() and b"\\" not in body:
        try:
            entry = orjson.loads(body)
        except orjson.JSONDecodeError:
            entry = None
    if not isinstance(entry, dict):
        entry = json.loads(body)
    return [(r, rec.record_bytes(r)) for r in rec.entry_records(entry)]
