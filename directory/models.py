"""The read side's own record: what the registry answered to whom, for the issuer's proof."""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class RoutingPlan(models.Model):
    """One routing plan answered: counts and SHA-256 of the request and answer bytes, not the
    answer itself, so an issuer can later prove what the registry said and when."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    issuer = models.ForeignKey(
        "registry.Issuer", on_delete=models.PROTECT, related_name="routing_plans"
    )
    token = models.ForeignKey(
        "registry.ApiToken", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    purpose = models.CharField(max_length=30, blank=True)
    asked = models.PositiveIntegerField()
    distinct = models.PositiveIntegerField()
    routable = models.PositiveIntegerField()
    unroutable = models.PositiveIntegerField()
    unroutable_by_reason = models.JSONField(default=dict)
    providers = models.PositiveIntegerField(help_text="Number of provider groups")
    request_sha256 = models.CharField(max_length=64)
    answer_sha256 = models.CharField(max_length=64)
    log_size = models.BigIntegerField(help_text="Size of the log when the plan was resolved")
    registries = models.JSONField(
        default=list,
        blank=True,
        help_text="A federated plan's parts: per registry, the count sent and the SHA-256 of "
        "its answer, or why it gave none (empty: resolved here alone)",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(routable__lte=models.F("distinct"))
                & models.Q(distinct__lte=models.F("asked")),
                name="%(app_label)s_%(class)s_counts_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"plan {self.id} ({self.asked} numbers)"


class TreeNode(models.Model):
    """One perfect, aligned subtree hash of the log's Merkle tree: leaves
    ``[index·2^level, (index+1)·2^level)``. Level 0 holds the leaf hashes.

    Written with the log entries they cover (same transaction) and never changed, so a root or a
    proof for any tree size reads O(log N) rows; the rows at level 8·L are the C2SP tile hashes of
    tile level L.
    """

    pk = models.CompositePrimaryKey("level", "index")
    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(index__gte=0) & models.Q(level__lte=63),
                name="%(app_label)s_%(class)s_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"node {self.level}/{self.index}"


class Checkpoint(models.Model):
    """A signed C2SP checkpoint (signed note) over the log at ``size``, as published.

    The note binds the origin, the size, the log root, the state map root and the time; the
    witnesses' cosignatures are added to ``note`` as they come (signature lines only: the signed
    text never changes).
    """

    size = models.BigIntegerField()
    root_hash = models.BinaryField(max_length=32)
    map_root = models.BinaryField(max_length=32, default=bytes(32))
    note = models.TextField(help_text="The signed note, exactly as served")
    cosigners = models.JSONField(default=list, blank=True, help_text="Names of the witnesses")
    key_name = models.CharField(max_length=200)
    key_hash = models.CharField(max_length=8, help_text="Hex of the 4-byte signed-note key hash")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-size", "-id"]
        indexes = [models.Index(fields=["-size", "-id"], name="directory_checkpoint_latest")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(size__gte=0), name="%(app_label)s_%(class)s_size_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"checkpoint {self.size}"


class VaultLogRef(models.Model):
    """Which log entries name a vault (their ``vault`` member): the index behind a vault's history.

    LogEntry bodies are canonical JSON bytes that no engine can index portably, so the append
    writes this row next to every entry that names a vault, in the same transaction.
    """

    pk = models.CompositePrimaryKey("number", "sequence")
    number = models.CharField(max_length=20)
    sequence = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.number} #{self.sequence}"


class StateRecord(models.Model):
    """One record of the state map as of log size ``version``: the complete vault or provider
    record a log entry carried (RFC 8785 bytes), kept for every version so that answers at a
    past checkpoint read the record of then. Derived from the log alone (``rebuild_state_map``).
    """

    pk = models.CompositePrimaryKey("key", "version")
    key = models.CharField(max_length=60)
    version = models.BigIntegerField()
    record = models.BinaryField()

    def __str__(self) -> str:
        return f"{self.key} @{self.version}"


class MapNode(models.Model):
    """One stored node of the state map (directory.transparency.statemap) as of ``version``.

    ``node`` is the node's id (depth and bit prefix); a leaf row also holds the leaf's path and
    value. Nodes are never changed: an update writes new rows with the new version along the
    path, so the map at any checkpoint can still be proven.
    """

    pk = models.CompositePrimaryKey("node", "version")
    node = models.BinaryField(max_length=34)
    version = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)
    leaf_path = models.BinaryField(max_length=32, null=True)
    leaf_value = models.BinaryField(max_length=32, null=True)

    def __str__(self) -> str:
        return f"map node {bytes(self.node).hex()} @{self.version}"
