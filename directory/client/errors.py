"""Why the client refuses an answer: one exception class, and exit code, per reason."""

from __future__ import annotations


class ClientError(Exception):
    """Anything that stops the client; ``exit_code`` is the CLI's exit status."""

    exit_code = 1
    label = "error"

    def __str__(self) -> str:
        return f"{self.label}: {super().__str__()}"


class RegistryError(ClientError):
    """The registry answered with an HTTP error the client cannot use."""

    label = "registry error"

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class VerificationError(ClientError):
    """The answer or the log failed verification: do not act on it."""

    exit_code = 2
    label = "REFUSED"


class Tampered(VerificationError):
    exit_code = 3
    label = "REFUSED (tampered)"


class UnknownKey(VerificationError):
    exit_code = 4
    label = "REFUSED (unknown key)"


class Expired(VerificationError):
    exit_code = 5
    label = "REFUSED (expired)"


class ProofMismatch(VerificationError):
    exit_code = 6
    label = "REFUSED (proof mismatch)"


class BadCheckpoint(VerificationError):
    exit_code = 7
    label = "REFUSED (bad checkpoint)"


class Inconsistent(VerificationError):
    """The registry's history is not an extension of what this client saw: a rewrite."""

    exit_code = 8
    label = "REFUSED (HISTORY REWRITTEN)"


class Pending(VerificationError):
    """The answer's log entry is not yet in a signed checkpoint."""

    exit_code = 9
    label = "REFUSED (not yet in a checkpoint)"


class Stale(VerificationError):
    """The checkpoint is older than the client accepts: newer changes may be hidden."""

    exit_code = 10
    label = "REFUSED (stale checkpoint)"


class NoQuorum(VerificationError):
    """Fewer witnesses than the policy requires cosigned the checkpoint."""

    exit_code = 11
    label = "REFUSED (no witness quorum)"


class RefusedNumber(ClientError):
    """The registry refused the number asked (400): it is not a well-formed vault number."""

    exit_code = 12
    label = "refused number"


class RolledBack(Inconsistent):
    """The registry serves an older checkpoint than one this client already saw."""

    exit_code = 13
    label = "REFUSED (ROLLBACK)"


class CertificateMismatch(VerificationError):
    """A certificate's PEM is not the certificate the log publishes (its proven fingerprint)."""

    exit_code = 14
    label = "REFUSED (certificate mismatch)"


class PlanMismatch(VerificationError):
    """A routing plan places a number otherwise than the signed state does."""

    exit_code = 15
    label = "REFUSED (plan mismatch)"
