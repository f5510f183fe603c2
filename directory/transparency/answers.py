"""What a lookup answer commits to, shared by the registry and the verifying client (pure).

The registry signs ``answer_projection`` in its receipt; the client recomputes the same
projection from the proven records (``records.lookup_fields``) and from the HTTP body, and
refuses the answer unless all three agree.
"""

from __future__ import annotations

import copy
from typing import Any

PROVEN_FIELDS = (
    "number",
    "status",
    "flags",
    "deliverable",
    "reasons",
    "provider",
    "endpoints",
    "encryption_certificates",
    "previous_provider",
)


def answer_projection(
    status: int, number: str, at: str, fields: dict[str, Any] | None
) -> dict[str, Any]:
    """The signed projection of a lookup: the HTTP status, the number, the time the answer
    holds for and, when found, every proven field (certificates without their PEM, which the
    client checks against the proven fingerprint instead)."""
    projection: dict[str, Any] = {"status": status, "number": number, "at": at}
    if fields is not None:
        proven = {name: copy.deepcopy(fields[name]) for name in PROVEN_FIELDS}
        for certificate in proven["encryption_certificates"]:
            certificate.pop("pem", None)
        projection["fields"] = proven
    return projection
