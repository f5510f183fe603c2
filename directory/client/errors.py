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
