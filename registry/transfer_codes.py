"""Transfer codes: generate, normalise, check and hash (DESIGN.md §5). Pure: no Django import.

A code is 20 characters of Crockford base32 shown in five groups of four,
``7K2M-9QX4-TR8B-N3WD-6HJ5``: 19 random characters (95 bits, drawn with ``secrets``) and one
check character. The check character is ISO 7064's hybrid MOD (M+1, M) system with M = 32 over
the Crockford alphabet (python-stdnum's ``mod_37_36`` with that alphabet, i.e. MOD 33,32): it
catches every single wrong character, and all but about 0.2 % of swaps of two neighbours, so a
typo is answered ``transfer_code_malformed`` before the registry counts a wrong attempt.

Input is tolerant as Crockford's decoding is: any case, spaces and hyphens ignored, ``I``/``L``
read as ``1`` and ``O`` as ``0``. Only a salted HMAC-SHA256 of the normalised code is stored: with
95 random bits a guess is hopeless however fast the hash, so no stretching is needed; the salt
keeps two equal codes from having equal hashes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from enum import StrEnum

from stdnum.iso7064 import mod_37_36

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
RANDOM_LENGTH = 19
LENGTH = RANDOM_LENGTH + 1
GROUP = 4
SALT_BYTES = 16

# Randomness of a code, in bits (log2(32) per character).
ENTROPY_BITS = RANDOM_LENGTH * 5

_SEPARATORS = re.compile(r"[\s\u00a0\u202f\-\u2010\u2011\u2012\u2013\u2014.]+")
_ALIASES = str.maketrans({"I": "1", "L": "1", "O": "0"})


class CodeError(StrEnum):
    """Why a typed code is not even a code; the registry counts no attempt for these."""

    EMPTY = "empty"
    INVALID_CHARACTERS = "invalid_characters"
    INVALID_LENGTH = "invalid_length"
    INVALID_CHECK_CHARACTER = "invalid_check_character"


_MESSAGES = {
    CodeError.EMPTY: "No transfer code was given.",
    CodeError.INVALID_CHARACTERS: (
        "A transfer code holds only letters and digits (U is never used; spaces and hyphens "
        "are ignored)."
    ),
    CodeError.INVALID_LENGTH: "A transfer code has exactly 20 letters and digits.",
    CodeError.INVALID_CHECK_CHARACTER: (
        "The last character does not match: the code was mistyped. No attempt was counted."
    ),
}


class InvalidCode(ValueError):
    """A typed code that cannot be a transfer code, with its reason."""

    def __init__(self, reason: CodeError):
        self.reason = reason
        super().__init__(_MESSAGES[reason])

    @property
    def message(self) -> str:
        return _MESSAGES[self.reason]


def check_character(body: str) -> str:
    """The check character of a code's 19 random characters."""
    return mod_37_36.calc_check_digit(body, alphabet=ALPHABET)


def generate() -> str:
    """A new normalised code: 19 random characters and its check character."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return body + check_character(body)


def normalise(raw: str) -> str:
    """The normalised form of a typed code, or InvalidCode saying what is wrong with it."""
    value = _SEPARATORS.sub("", raw or "").upper().translate(_ALIASES)
    if not value:
        raise InvalidCode(CodeError.EMPTY)
    if any(char not in ALPHABET for char in value):
        raise InvalidCode(CodeError.INVALID_CHARACTERS)
    if len(value) != LENGTH:
        raise InvalidCode(CodeError.INVALID_LENGTH)
    if mod_37_36.checksum(value, alphabet=ALPHABET) != 1:
        raise InvalidCode(CodeError.INVALID_CHECK_CHARACTER)
    return value


def format_display(code: str) -> str:
    """Groups of four joined by hyphens, as the holder is given it."""
    return "-".join(code[i : i + GROUP] for i in range(0, len(code), GROUP))


def new_salt() -> bytes:
    return secrets.token_bytes(SALT_BYTES)


def hash_code(code: str, salt: bytes) -> str:
    """Hex HMAC-SHA256 of a normalised code keyed with its own salt."""
    return hmac.new(salt, code.encode("ascii"), hashlib.sha256).hexdigest()


def matches(code: str, salt: bytes, expected_hash: str) -> bool:
    """Constant-time comparison of a normalised code with a stored hash."""
    return hmac.compare_digest(hash_code(code, salt), expected_hash)
