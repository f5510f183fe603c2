"""X.509 certificates uploaded by vault providers: parse them and refuse any the registry cannot
vouch for (private keys, bundles, expired, weak keys, usage unfit for the declared use). Pure.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

USES = ("encryption", "signing", "tls")
KEY_TYPES = ("rsa", "ec-p256", "ec-p384", "ed25519")
MIN_RSA_BITS = 2048

# Any PEM private key label: PRIVATE KEY, RSA/EC/DSA/OPENSSH PRIVATE KEY, ENCRYPTED PRIVATE KEY…
_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----", re.IGNORECASE)
_BEGIN = re.compile(rb"-----BEGIN CERTIFICATE-----")
_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.DOTALL)
_CURVES = {"secp256r1": "ec-p256", "secp384r1": "ec-p384"}
_TLS_EKU = {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
_KEY_USAGE_FLAGS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)  # KeyUsage(...) arguments


class CertificateError(StrEnum):
    """Stable machine codes for a refused certificate; part of the public API."""

    TOO_LARGE = "cert_too_large"
    NOT_PEM = "cert_not_pem"
    PRIVATE_KEY = "cert_private_key"
    MULTIPLE = "cert_multiple"
    UNPARSEABLE = "cert_unparseable"
    EXPIRED = "cert_expired"
    NOT_YET_VALID = "cert_not_yet_valid"
    WEAK_KEY = "cert_weak_key"
    UNSUPPORTED_KEY = "cert_unsupported_key"
    KEY_USAGE_MISSING = "cert_key_usage_missing"
    KEY_USAGE_MISMATCH = "cert_key_usage_mismatch"
    UNKNOWN_USE = "cert_unknown_use"


class InvalidCertificate(ValueError):
    """A certificate that cannot be accepted, with its stable code. The message never quotes it."""

    def __init__(self, code: CertificateError, message: str):
        self.code = code
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class CertificateInfo:
    """An accepted certificate, re-encoded from its DER, and what the registry shows of it."""

    pem: str
    fingerprint_sha256: str
    subject: str
    issuer: str
    serial_number: str
    not_before: datetime
    not_after: datetime
    key_type: str
    key_size: int


def inspect_certificate(
    pem: str | bytes, use: str, *, now: datetime | None = None, max_bytes: int = 16384
) -> CertificateInfo:
    """Parse one PEM certificate and check it fits `use`, or raise InvalidCertificate.

    Checks run in this order: UNKNOWN_USE, TOO_LARGE, PRIVATE_KEY, then the enum's order.
    """
    E = CertificateError
    if use not in USES:
        raise InvalidCertificate(E.UNKNOWN_USE, f"A certificate's use is one of {', '.join(USES)}.")
    data = pem.encode("utf-8", "replace") if isinstance(pem, str) else bytes(pem)
    if len(data) > max_bytes:
        raise InvalidCertificate(E.TOO_LARGE, f"A certificate is at most {max_bytes} bytes of PEM.")
    if _PRIVATE_KEY.search(data):
        raise InvalidCertificate(
            E.PRIVATE_KEY, "This holds a private key: never share one. Upload the certificate only."
        )
    count = len(_BEGIN.findall(data))
    if count == 0:
        raise InvalidCertificate(E.NOT_PEM, "No '-----BEGIN CERTIFICATE-----' PEM block was found.")
    if count > 1:
        raise InvalidCertificate(E.MULTIPLE, f"Upload one certificate, not {count} (no chains).")
    cert = _parse(data.strip())
    now = now or datetime.now(UTC)
    not_before, not_after = cert.not_valid_before_utc, cert.not_valid_after_utc
    if not_after <= now:
        raise InvalidCertificate(E.EXPIRED, f"The certificate expired on {not_after.isoformat()}.")
    if not_before > now:
        raise InvalidCertificate(
            E.NOT_YET_VALID, f"The certificate is valid from {not_before.isoformat()} only."
        )
    key_type, key_size = _key(cert)
    _check_usage(cert, use, key_type)
    return CertificateInfo(
        pem=cert.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(),
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial_number=format(cert.serial_number, "x"),
        not_before=not_before,
        not_after=not_after,
        key_type=key_type,
        key_size=key_size,
    )


def _parse(data: bytes) -> x509.Certificate:
    block = _BLOCK.search(data)
    try:
        if block is None:
            raise ValueError("no END CERTIFICATE line")
        cert = x509.load_der_x509_certificate(
            base64.b64decode(b"".join(block.group(1).split()), validate=True)
        )
        # Names and extensions are decoded lazily: decode them now, so a bad one is UNPARSEABLE.
        _ = (cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(), cert.extensions)
    except ValueError as exc:  # binascii.Error is a ValueError too
        raise InvalidCertificate(
            CertificateError.UNPARSEABLE, "The PEM block does not hold a valid X.509 certificate."
        ) from exc
    return cert


def _key(cert: x509.Certificate) -> tuple[str, int]:
    try:
        key = cert.public_key()
    except (ValueError, UnsupportedAlgorithm):
        key = None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise InvalidCertificate(
                CertificateError.WEAK_KEY,
                f"The RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} are needed.",
            )
        return "rsa", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in _CURVES:
        return _CURVES[key.curve.name], key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "ed25519", 256
    raise InvalidCertificate(
        CertificateError.UNSUPPORTED_KEY,
        "Unsupported key: use RSA (2048 bits or more), EC P-256 or P-384, or Ed25519.",
    )


def _check_usage(cert: x509.Certificate, use: str, key_type: str) -> None:
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        raise InvalidCertificate(
            CertificateError.KEY_USAGE_MISSING, "The certificate has no KeyUsage extension."
        ) from None
    problem = None
    if use == "encryption":
        if key_type == "ed25519":
            problem = "An Ed25519 key can only sign: encryption needs an RSA or EC key."
        elif key_type == "rsa" and not usage.key_encipherment:
            problem = "An RSA encryption certificate needs the keyEncipherment key usage."
        elif key_type != "rsa" and not usage.key_agreement:
            problem = "An EC encryption certificate needs the keyAgreement key usage."
    elif use == "signing":
        if not (usage.digital_signature or usage.content_commitment):
            problem = "A signing certificate needs digitalSignature or contentCommitment."
    elif not (usage.digital_signature or (key_type == "rsa" and usage.key_encipherment)):
        problem = "A TLS certificate needs the digitalSignature key usage."
    else:
        try:
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            eku = None
        if eku is not None and not _TLS_EKU.intersection(eku):
            problem = "A TLS certificate's extended key usage needs serverAuth or clientAuth."
    if problem:
        raise InvalidCertificate(CertificateError.KEY_USAGE_MISMATCH, problem)


def generate_certificate(
    common_name: str,
    use: str = "encryption",
    *,
    key_type: str = "ec-p256",
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key_usage: dict[str, bool] | None = None,
    rsa_bits: int = 2048,
    include_key_usage: bool = True,
) -> tuple[str, str]:
    """A self-signed certificate fitting `use`, as (certificate PEM, unencrypted PKCS8 key PEM).

    For demo federations and tests. `key_usage` replaces the KeyUsage flags outright (flags it
    does not name are false), e.g. ``{"digital_signature": True}``.
    """
    if use not in USES:
        raise ValueError(f"use must be one of {', '.join(USES)}")
    if key_usage is None:
        key_usage = _fitting_usage(use, key_type)
    key = _new_key(key_type, rsa_bits)
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(days=1))
        .not_valid_after(not_after or now + timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    if include_key_usage:
        builder = builder.add_extension(
            x509.KeyUsage(**dict.fromkeys(_KEY_USAGE_FLAGS, False) | key_usage), critical=True
        )
    if use == "tls":
        tls_eku = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(tls_eku), critical=False)
    algorithm = None if key_type == "ed25519" else hashes.SHA256()
    cert = builder.sign(key, algorithm)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii"), key_pem.decode("ascii")


def _fitting_usage(use: str, key_type: str) -> dict[str, bool]:
    if use == "signing":
        return {"digital_signature": True, "content_commitment": True}
    if use == "tls":
        return {"digital_signature": True, "key_encipherment": key_type == "rsa"}
    if key_type == "ed25519":
        raise ValueError("An Ed25519 key cannot encrypt; pass key_usage to build one anyway.")
    return {"key_encipherment": True} if key_type == "rsa" else {"key_agreement": True}


def _new_key(key_type: str, rsa_bits: int) -> CertificateIssuerPrivateKeyTypes:
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    if key_type in ("ec-p256", "ec-p384"):
        return ec.generate_private_key(ec.SECP256R1() if key_type == "ec-p256" else ec.SECP384R1())
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"key_type must be one of {', '.join(KEY_TYPES)}")
