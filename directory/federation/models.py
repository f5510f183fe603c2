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
