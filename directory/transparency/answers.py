"""What a lookup answer commits to, shared by the registry and the verifying client (pure).

The registry signs ``answer_projection`` in its receipt; the client recomputes the same
projection from the proven records (``records.lookup_fields``) and from the HTTP body, and
refuses the answer unless all three agree.
"""

from __future__ import annotations

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
        # Shared with ``fields``, not copied: nothing changes an answer once it is built; the
        # certificates alone are new dicts, without their PEM.
        proven = {name: fields[name] for name in PROVEN_FIELDS}
        proven["encryption_certificates"] = [
            {key: value for key, value in certificate.items() if key != "pem"}
            for certificate in fields["encryption_certificates"]
        ]
        projection["fields"] = proven
    return projection
