"""Tests for registry.x509: parsing and checking the certificates vault providers upload."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, x25519
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from hypothesis import given
from hypothesis import strategies as st

from registry.x509 import (
    USES,
    CertificateError,
    CertificateInfo,
    InvalidCertificate,
    generate_certificate,
    inspect_certificate,
)

FITTING = [
    ("rsa", "encryption"),
    ("rsa", "signing"),
    ("rsa", "tls"),
    ("ec-p256", "encryption"),
    ("ec-p256", "signing"),
    ("ec-p256", "tls"),
    ("ec-p384", "encryption"),
    ("ec-p384", "signing"),
    ("ec-p384", "tls"),
    ("ed25519", "signing"),
    ("ed25519", "tls"),
]


def _code(pem: str | bytes, use: str = "encryption", **kwargs: object) -> CertificateError:
    with pytest.raises(InvalidCertificate) as caught:
        inspect_certificate(pem, use, **kwargs)
    return caught.value.code


def _build(public_key: object, signer: object, extensions: list[x509.ExtensionType]) -> str:
    """A certificate built directly with cryptography, for keys and extensions the helper lacks."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "direct")])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
    )
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    algorithm = (
        None
        if isinstance(signer, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey))
        else hashes.SHA256()
    )
    return builder.sign(signer, algorithm).public_bytes(serialization.Encoding.PEM).decode()


def _usage(**flags: bool) -> x509.KeyUsage:
    names = "digital_signature content_commitment key_encipherment data_encipherment"
    names += " key_agreement key_cert_sign crl_sign encipher_only decipher_only"
    return x509.KeyUsage(**{name: flags.get(name, False) for name in names.split()})


# Happy paths


@pytest.mark.parametrize(("key_type", "use"), FITTING)
def test_a_fitting_certificate_is_accepted_with_all_its_details(key_type: str, use: str) -> None:
    # Given a certificate generated for the use
    pem, _ = generate_certificate("Vault Provider One", use, key_type=key_type)
    cert = x509.load_pem_x509_certificate(pem.encode())

    # When it is inspected
    info = inspect_certificate(pem, use)

    # Then every field matches what cryptography reads from it
    assert isinstance(info, CertificateInfo)
    assert info.pem == cert.public_bytes(serialization.Encoding.PEM).decode()
    assert info.pem.endswith("-----END CERTIFICATE-----\n")
    assert info.fingerprint_sha256 == cert.fingerprint(hashes.SHA256()).hex()
    assert info.subject == "CN=Vault Provider One"
    assert info.subject == cert.subject.rfc4514_string()
    assert info.issuer == cert.issuer.rfc4514_string()
    assert info.serial_number == hex(cert.serial_number)[2:]
    assert info.not_before == cert.not_valid_before_utc
    assert info.not_after == cert.not_valid_after_utc
    assert info.not_before.tzinfo is not None and info.not_before.utcoffset() == timedelta(0)
    assert info.key_type == key_type
    expected_size = 256 if key_type == "ed25519" else cert.public_key().key_size
    assert info.key_size == expected_size


def test_key_sizes_are_reported_in_bits() -> None:
    # Given certificates of each key type
    sizes = {
        key_type: inspect_certificate(generate_certificate("p", "tls", key_type=key_type)[0], "tls")
        for key_type in ("rsa", "ec-p256", "ec-p384", "ed25519")
    }

    # Then their sizes are the usual ones
    assert {key_type: info.key_size for key_type, info in sizes.items()} == {
        "rsa": 2048,
        "ec-p256": 256,
        "ec-p384": 384,
        "ed25519": 256,
    }


def test_a_larger_rsa_key_is_accepted() -> None:
    pem, _ = generate_certificate("p", "encryption", key_type="rsa", rsa_bits=3072)
    assert inspect_certificate(pem, "encryption").key_size == 3072


def test_several_certificates_for_the_same_use_are_all_valid() -> None:
    # Given two certificates for the same use (a rotation overlap)
    first, _ = generate_certificate("Provider", "encryption")
    second, _ = generate_certificate("Provider", "encryption")

    # When both are inspected
    infos = [inspect_certificate(first, "encryption"), inspect_certificate(second, "encryption")]

    # Then both are accepted, and they are distinct
    assert infos[0].fingerprint_sha256 != infos[1].fingerprint_sha256


def test_crlf_bytes_and_surrounding_whitespace_are_accepted() -> None:
    # Given a certificate with CRLF line endings, padded with whitespace, as bytes
    pem, _ = generate_certificate("Provider", "signing")
    messy = ("\r\n  " + pem.replace("\n", "\r\n") + "\r\n\t ").encode()

    # When it is inspected
    info = inspect_certificate(messy, "signing")

    # Then it is the same certificate, re-encoded cleanly
    assert info.pem == pem
    assert "\r" not in info.pem


def test_text_around_the_block_is_dropped_from_the_stored_pem() -> None:
    pem, _ = generate_certificate("Provider", "signing")
    info = inspect_certificate(f"subject=CN=Provider\nissuer=CN=Provider\n{pem}", "signing")
    assert info.pem == pem


def test_an_rsa_tls_certificate_with_only_key_encipherment_is_accepted() -> None:
    pem, _ = generate_certificate("p", "tls", key_type="rsa", key_usage={"key_encipherment": True})
    assert inspect_certificate(pem, "tls").key_type == "rsa"


def test_a_signing_certificate_with_only_content_commitment_is_accepted() -> None:
    pem, _ = generate_certificate("p", "signing", key_usage={"content_commitment": True})
    assert inspect_certificate(pem, "signing").key_type == "ec-p256"


def test_a_tls_certificate_without_extended_key_usage_is_accepted() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = _build(key.public_key(), key, [_usage(digital_signature=True)])
    assert inspect_certificate(pem, "tls").key_type == "ec-p256"


def test_encryption_and_signing_do_not_check_extended_key_usage() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING])
    pem = _build(key.public_key(), key, [_usage(key_agreement=True, digital_signature=True), eku])
    assert inspect_certificate(pem, "encryption").key_type == "ec-p256"
    assert inspect_certificate(pem, "signing").key_type == "ec-p256"


# Validity window boundaries


def test_a_certificate_is_valid_until_just_before_not_after() -> None:
    # Given a certificate and the instants around its end of validity
    pem, _ = generate_certificate("p", "signing")
    not_after = x509.load_pem_x509_certificate(pem.encode()).not_valid_after_utc

    # Then it is valid one second before, and expired at not_after itself
    inspect_certificate(pem, "signing", now=not_after - timedelta(seconds=1))
    assert _code(pem, "signing", now=not_after) == CertificateError.EXPIRED


def test_a_certificate_is_valid_from_not_before_itself() -> None:
    pem, _ = generate_certificate("p", "signing")
    not_before = x509.load_pem_x509_certificate(pem.encode()).not_valid_before_utc
    inspect_certificate(pem, "signing", now=not_before)
    assert _code(pem, "signing", now=not_before - timedelta(seconds=1)) == (
        CertificateError.NOT_YET_VALID
    )


# One test per error code


def test_garbage_text_is_not_pem() -> None:
    assert _code("hello, this is not a certificate") == CertificateError.NOT_PEM


@pytest.mark.parametrize("empty", ["", "  \r\n\t", b""])
def test_an_empty_input_is_not_pem(empty: str | bytes) -> None:
    assert _code(empty) == CertificateError.NOT_PEM


def test_a_public_key_alone_is_not_pem() -> None:
    public = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert _code(pem) == CertificateError.NOT_PEM


@pytest.mark.parametrize(
    ("key", "private_format", "encryption"),
    [
        (ec.generate_private_key(ec.SECP256R1()), "PKCS8", serialization.NoEncryption()),
        (ec.generate_private_key(ec.SECP256R1()), "TraditionalOpenSSL", None),
        (ed25519.Ed25519PrivateKey.generate(), "OpenSSH", None),
        (ec.generate_private_key(ec.SECP256R1()), "PKCS8", "encrypted"),
    ],
    ids=["pkcs8", "traditional", "openssh", "encrypted-pkcs8"],
)
def test_a_private_key_alone_is_refused(
    key: object, private_format: str, encryption: object
) -> None:
    # Given a private key in one of its PEM forms
    if encryption is None:
        encryption = serialization.NoEncryption()
    elif encryption == "encrypted":
        encryption = serialization.BestAvailableEncryption(b"secret")
    pem = key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, getattr(serialization.PrivateFormat, private_format), encryption
    )

    # Then it is refused as a private key
    assert b"PRIVATE KEY-----" in pem
    assert _code(pem) == CertificateError.PRIVATE_KEY


@pytest.mark.parametrize("key_first", [False, True])
def test_a_certificate_with_its_private_key_is_refused_without_quoting_it(key_first: bool) -> None:
    # Given a certificate pasted together with its private key
    cert_pem, key_pem = generate_certificate("Provider", "encryption")
    pasted = key_pem + cert_pem if key_first else cert_pem + key_pem

    # When it is inspected
    with pytest.raises(InvalidCertificate) as caught:
        inspect_certificate(pasted, "encryption")

    # Then it is refused, and the message quotes neither the key nor the certificate
    assert caught.value.code == CertificateError.PRIVATE_KEY
    secrets = [line for line in (key_pem + cert_pem).splitlines() if "-----" not in line]
    assert not any(line in str(caught.value) for line in secrets)


def test_two_certificates_are_multiple() -> None:
    first, _ = generate_certificate("one", "signing")
    second, _ = generate_certificate("two", "signing")
    assert _code(first + second, "signing") == CertificateError.MULTIPLE


@pytest.mark.parametrize(
    "body",
    [
        "this is !!! not base64 ???",
        base64.b64encode(b"valid base64 but not DER").decode(),
        "",
    ],
    ids=["bad-base64", "not-der", "empty-block"],
)
def test_a_pem_block_without_a_certificate_inside_is_unparseable(body: str) -> None:
    pem = f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"
    assert _code(pem) == CertificateError.UNPARSEABLE


def test_a_truncated_certificate_is_unparseable() -> None:
    pem, _ = generate_certificate("p", "signing")
    lines = pem.splitlines()
    truncated = "\n".join([*lines[:3], lines[-1]])
    assert _code(truncated, "signing") == CertificateError.UNPARSEABLE


def test_a_block_without_its_end_line_is_unparseable() -> None:
    pem, _ = generate_certificate("p", "signing")
    assert _code(pem.replace("-----END CERTIFICATE-----", ""), "signing") == (
        CertificateError.UNPARSEABLE
    )


def test_an_expired_certificate_is_refused() -> None:
    now = datetime.now(UTC)
    pem, _ = generate_certificate(
        "p", not_before=now - timedelta(days=30), not_after=now - timedelta(days=1)
    )
    assert _code(pem) == CertificateError.EXPIRED


def test_a_certificate_not_yet_valid_is_refused() -> None:
    now = datetime.now(UTC)
    pem, _ = generate_certificate(
        "p", not_before=now + timedelta(days=1), not_after=now + timedelta(days=30)
    )
    assert _code(pem) == CertificateError.NOT_YET_VALID


def test_an_rsa_1024_key_is_weak() -> None:
    pem, _ = generate_certificate("p", "encryption", key_type="rsa", rsa_bits=1024)
    assert _code(pem) == CertificateError.WEAK_KEY


@pytest.mark.parametrize(
    "curve", [ec.SECP521R1(), ec.SECP256K1(), ec.BrainpoolP256R1()], ids=lambda c: c.name
)
def test_an_unsupported_curve_is_refused(curve: ec.EllipticCurve) -> None:
    # Given a certificate on a curve the federation does not use, with a fitting usage
    key = ec.generate_private_key(curve)
    pem = _build(key.public_key(), key, [_usage(digital_signature=True, key_agreement=True)])

    # Then it is refused for its key
    assert _code(pem, "signing") == CertificateError.UNSUPPORTED_KEY


@pytest.mark.parametrize(
    "make_key",
    [
        lambda: dsa.generate_private_key(2048),
        lambda: ed448.Ed448PrivateKey.generate(),
        lambda: x25519.X25519PrivateKey.generate(),
    ],
    ids=["dsa", "ed448", "x25519"],
)
def test_an_unsupported_key_algorithm_is_refused(make_key: object) -> None:
    # Given a certificate for such a key (signed by an Ed25519 issuer where the key cannot sign)
    key = make_key()  # type: ignore[operator]
    signer = key if hasattr(key, "sign") else ed25519.Ed25519PrivateKey.generate()
    pem = _build(key.public_key(), signer, [_usage(digital_signature=True, key_agreement=True)])

    # Then it is refused for its key
    assert _code(pem, "signing") == CertificateError.UNSUPPORTED_KEY


def test_a_certificate_without_key_usage_is_refused() -> None:
    pem, _ = generate_certificate("p", "signing", include_key_usage=False)
    assert _code(pem, "signing") == CertificateError.KEY_USAGE_MISSING


@pytest.mark.parametrize(
    ("use", "key_type", "key_usage"),
    [
        ("encryption", "ec-p256", {"digital_signature": True}),
        ("encryption", "rsa", {"digital_signature": True}),
        ("encryption", "rsa", {"key_agreement": True}),
        ("encryption", "ec-p384", {"key_encipherment": True}),
        ("encryption", "ed25519", {"key_agreement": True, "key_encipherment": True}),
        ("signing", "ec-p256", {"key_encipherment": True}),
        ("signing", "rsa", {"key_encipherment": True, "data_encipherment": True}),
        ("tls", "ec-p256", {"key_agreement": True}),
        ("tls", "ec-p256", {"key_encipherment": True}),
    ],
    ids=[
        "ec-encryption-digital-signature-only",
        "rsa-encryption-digital-signature-only",
        "rsa-encryption-key-agreement-only",
        "ec-encryption-key-encipherment-only",
        "ed25519-encryption",
        "ec-signing-key-encipherment-only",
        "rsa-signing-encipherment-only",
        "ec-tls-key-agreement-only",
        "ec-tls-key-encipherment-only",
    ],
)
def test_a_key_usage_unfit_for_the_use_is_a_mismatch(
    use: str, key_type: str, key_usage: dict[str, bool]
) -> None:
    # Given a certificate whose key usage does not fit the declared use
    pem, _ = generate_certificate("p", use, key_type=key_type, key_usage=key_usage)

    # Then it is refused as a mismatch
    assert _code(pem, use) == CertificateError.KEY_USAGE_MISMATCH


def test_ed25519_is_a_mismatch_for_encryption_even_with_a_fitting_certificate() -> None:
    pem, _ = generate_certificate("p", "signing", key_type="ed25519")
    assert _code(pem, "encryption") == CertificateError.KEY_USAGE_MISMATCH


def test_tls_with_only_code_signing_extended_key_usage_is_a_mismatch() -> None:
    # Given a TLS-shaped key usage but an extended key usage for code signing only
    key = ec.generate_private_key(ec.SECP256R1())
    eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING])
    pem = _build(key.public_key(), key, [_usage(digital_signature=True), eku])

    # Then it is refused for TLS
    assert _code(pem, "tls") == CertificateError.KEY_USAGE_MISMATCH


@pytest.mark.parametrize("eku", [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
def test_tls_with_server_or_client_auth_is_accepted(eku: x509.ObjectIdentifier) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    extensions = [_usage(digital_signature=True), x509.ExtendedKeyUsage([eku])]
    pem = _build(key.public_key(), key, extensions)
    assert inspect_certificate(pem, "tls").key_type == "ec-p256"


@pytest.mark.parametrize("use", ["", "ENCRYPTION", "sign", "tls "])
def test_an_unknown_use_is_refused(use: str) -> None:
    pem, _ = generate_certificate("p", "signing")
    assert _code(pem, use) == CertificateError.UNKNOWN_USE


def test_a_text_longer_than_max_bytes_is_too_large() -> None:
    # Given a valid certificate
    pem, _ = generate_certificate("p", "signing")

    # Then it fits a limit of exactly its size, and not one byte less
    inspect_certificate(pem, "signing", max_bytes=len(pem))
    assert _code(pem, "signing", max_bytes=len(pem) - 1) == CertificateError.TOO_LARGE
    assert _code(pem + " " * 16384, "signing") == CertificateError.TOO_LARGE


# Precedence between codes


def test_the_use_is_checked_first() -> None:
    assert _code("x" * 100_000, "nope") == CertificateError.UNKNOWN_USE


def test_too_large_wins_over_a_private_key() -> None:
    _, key_pem = generate_certificate("p")
    assert _code(key_pem, max_bytes=10) == CertificateError.TOO_LARGE


def test_a_private_key_wins_over_multiple_certificates() -> None:
    first, key_pem = generate_certificate("one")
    second, _ = generate_certificate("two")
    assert _code(first + key_pem + second) == CertificateError.PRIVATE_KEY


def test_expiry_is_reported_before_a_weak_key_or_usage() -> None:
    now = datetime.now(UTC)
    pem, _ = generate_certificate(
        "p",
        key_type="rsa",
        rsa_bits=1024,
        include_key_usage=False,
        not_before=now - timedelta(days=30),
        not_after=now - timedelta(days=1),
    )
    assert _code(pem) == CertificateError.EXPIRED


# The exception and the generator


def test_invalid_certificate_carries_its_code_and_message() -> None:
    error = InvalidCertificate(CertificateError.EXPIRED, "Expired.")
    assert isinstance(error, ValueError)
    assert (error.code, error.message, str(error)) == (
        CertificateError.EXPIRED,
        "Expired.",
        "Expired.",
    )
    assert error.code == "cert_expired"


def test_generated_key_matches_the_certificate_and_is_unencrypted_pkcs8() -> None:
    # Given a generated certificate and key
    cert_pem, key_pem = generate_certificate("p", "tls", key_type="rsa")

    # Then the key is unencrypted PKCS8 and belongs to the certificate
    assert key_pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(serialization.Encoding.DER, spki) == (
        cert.public_key().public_bytes(serialization.Encoding.DER, spki)
    )


def test_generated_dates_default_to_a_year_and_honour_overrides() -> None:
    # Given the default and explicit validity windows
    default = inspect_certificate(generate_certificate("p")[0], "encryption")
    start = datetime(2030, 1, 1, tzinfo=UTC)
    pem, _ = generate_certificate("p", not_before=start, not_after=start + timedelta(days=10))

    # Then the default spans 366 days around now, and overrides are kept
    assert default.not_after - default.not_before == timedelta(days=366)
    info = inspect_certificate(pem, "encryption", now=start + timedelta(days=1))
    assert (info.not_before, info.not_after) == (start, start + timedelta(days=10))


def test_generate_refuses_what_cannot_be_built() -> None:
    with pytest.raises(ValueError, match="Ed25519"):
        generate_certificate("p", "encryption", key_type="ed25519")
    with pytest.raises(ValueError, match="key_type"):
        generate_certificate("p", key_type="dsa")
    with pytest.raises(ValueError, match="use"):
        generate_certificate("p", "nope")


def test_every_use_has_a_fitting_generated_certificate() -> None:
    for use in USES:
        assert inspect_certificate(generate_certificate("p", use)[0], use).key_type == "ec-p256"


# Robustness


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_arbitrary_input_only_ever_raises_invalid_certificate(data: str | bytes) -> None:
    with pytest.raises(InvalidCertificate):
        inspect_certificate(data, "signing")


@given(st.binary(max_size=600))
def test_arbitrary_bytes_in_a_certificate_block_are_unparseable(der: bytes) -> None:
    body = base64.encodebytes(der).decode()
    pem = f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n"
    assert _code(pem, "signing") == CertificateError.UNPARSEABLE
