"""What a registry keeps of its federation: the documents it accepted, and the nonces of the
registry-to-registry requests it answered (replays are refused)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class FederationDocument(models.Model):
    """A signed federation document this registry accepted; the highest serial is in force.

    Kept, never updated: the signed note is the document; the other columns are read from it.
    """

    serial = models.PositiveBigIntegerField(unique=True)
    federation = models.CharField(max_length=200)
    signed = models.TextField(help_text="The C2SP signed note, as the federation key signed it")
    installed_at = models.DateTimeField(default=timezone.now)
    installed_by = models.CharField(max_length=200)

    class Meta:
        ordering = ["-serial"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(serial__gte=1), name="%(app_label)s_%(class)s_serial_positive"
            )
        ]

    def __str__(self) -> str:
        return f"{self.federation} #{self.serial}"


class SeenNonce(models.Model):
    """The nonce of a registry-to-registry request already answered, kept past the request's
    validity (60 s) so that a replay of it is refused."""

    member = models.CharField(max_length=200)
    nonce = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["member", "nonce"], name="%(app_label)s_%(class)s_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.member} {self.nonce}"


class TrafficDirection(models.TextChoices):
    OUT = "out", "asked by this registry"  # for its issuers, answered by the peer
    IN = "in", "asked by the peer"  # for the peer's issuers, answered here


class PeerTraffic(models.Model):
    """Forwarded requests between this registry and one peer in one minute, one direction:
    counted in memory by each worker and added here in bulk (``directory.federation.traffic``),
    never one write per request. ``numbers`` counts the numbers asked (1 per lookup); ``errors``
    the requests the peer did not answer (down, too slow, a 5xx)."""

    member = models.CharField(max_length=200)
    minute = models.DateTimeField(db_index=True)
    direction = models.CharField(max_length=3, choices=TrafficDirection.choices)
    lookups = models.PositiveBigIntegerField(default=0)
    plans = models.PositiveBigIntegerField(default=0)
    numbers = models.PositiveBigIntegerField(default=0)
    errors = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-minute", "member", "direction"]
        verbose_name_plural = "peer traffic"
        constraints = [
            models.UniqueConstraint(
                fields=["member", "minute", "direction"], name="%(app_label)s_%(class)s_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.member} {self.direction} {self.minute:%Y-%m-%d %H:%M}"


class PeerHealth(models.Model):
    """What this registry last saw of one peer: its latest checkpoint (verified with the log
    key the federation document lists) and who cosigned it, the last error talking to it, the
    last time it answered. Written by ``federation_peers_check`` (``manage.py federation
    check``, a timer, or the admin) and by the traffic flush; one row per member."""

    member = models.CharField(max_length=200, unique=True)
    checkpoint_size = models.BigIntegerField(null=True, blank=True)
    checkpoint_time = models.DateTimeField(
        null=True, blank=True, help_text="The time the peer signed in its checkpoint"
    )
    checkpoint_note = models.TextField(blank=True)
    cosigners = models.JSONField(
        default=list, blank=True, help_text="Witnesses whose cosignature its checkpoint carries"
    )
    checked_at = models.DateTimeField(null=True, blank=True)
    last_ok_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["member"]
        verbose_name_plural = "peer health"

    def __str__(self) -> str:
        return self.member
