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
