"""Refusals in people's words: every stable code a portal page can meet, in French and English.

The services raise ``DomainError`` with a stable code (the API's problem+json); pages say the
same thing in the reader's language. A code missing here falls back to the service's message.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from registry.errors import DomainError

MESSAGES = {
    # Vault numbers
    "empty": _("Type a vault number."),
    "invalid_characters": _("A vault number has only letters and digits (spaces allowed)."),
    "invalid_length": _("A vault number has 20 characters (for example FR97 VLT1 0123 4567 8901)."),
    "invalid_country": _("This number does not belong to this federation's country."),
    "invalid_allocator": _("The four characters after the check digits are not a registry code."),
    "invalid_serial": _("The last twelve characters of a vault number are digits."),
    "invalid_check_digits": _("The check digits do not match: a character is probably mistyped."),
    "unknown_allocator": _("No registry of the federation uses this code: check the number."),
    "vault_not_found": _("No vault has this number."),
    "vault_closed": _("This vault is closed."),
    # State
    "provider_not_active": _("Your organisation is not active: it cannot do this now."),
    "issuer_not_active": _("Your organisation is not active: it cannot do this now."),
    "already_held": _("Delivery to this vault is already stopped."),
    "not_held": _("Delivery to this vault is not stopped."),
    "registry_locked": _("The registry locked this vault: contact the federation."),
    "endpoint_already_deactivated": _("This endpoint is already deactivated."),
    "certificate_already_retired": _("This certificate is already retired."),
    "duplicate_endpoint": _("This address is already published for this transport profile."),
    "duplicate_certificate": _("This certificate is already published for this use."),
    "duplicate_legal_id": _("An application or a member with this legal identifier exists."),
    "token_already_revoked": _("This token is already revoked."),
    "permission_denied": _("Your role does not allow this."),
    "validation_error": _("Some information is missing or wrong."),
    # Certificates
    "cert_too_large": _("This file is too large to be a certificate."),
    "cert_not_pem": _(
        "This is not a PEM certificate: paste the text from -----BEGIN CERTIFICATE----- "
        "to -----END CERTIFICATE-----."
    ),
    "cert_private_key": _(
        "This is a private key. Never send it: send the certificate only, and keep the key."
    ),
    "cert_multiple": _("Send one certificate at a time, not a chain."),
    "cert_unparseable": _("This certificate cannot be read: it is damaged or not X.509."),
    "cert_expired": _("This certificate has expired."),
    "cert_not_yet_valid": _("This certificate is not valid yet."),
    "cert_weak_key": _("The key is too weak: RSA needs at least 2048 bits."),
    "cert_unsupported_key": _("Only RSA, EC P-256/P-384 and Ed25519 keys are accepted."),
    "cert_key_usage_missing": _(
        "The certificate has no KeyUsage extension: it must say what the key is for."
    ),
    "cert_key_usage_mismatch": _("The certificate's key usage does not fit the chosen use."),
    "cert_unknown_use": _("Choose what the certificate is for."),
    # Transfers
    "transfer_code_malformed": _("This is not a transfer code: check what the holder typed."),
    "transfer_code_invalid": _("This transfer code is wrong, used, or was never issued."),
    "transfer_code_expired": _("This transfer code has expired: the holder needs a new one."),
    "transfer_code_locked": _("Too many wrong codes: the holder needs a new one."),
    "transfer_code_not_found": _("This vault has no usable transfer code."),
    "vault_on_hold": _("Delivery to this vault is stopped, so it cannot move."),
    "client_transfer_prohibited": _("The holder asked their provider to block moves."),
    "post_transfer_lock": _("This vault moved less than 30 days ago."),
    "transfer_already_pending": _("Another move of this vault is pending."),
    "gaining_provider_not_active": _("The gaining provider is not active."),
    "already_hosted_here": _("You already host this vault."),
    "transfer_not_found": _("No such transfer of yours."),
    "invalid_transfer_state": _("This transfer is no longer pending."),
    "transfer_deadline_passed": _("The deadline of this transfer has passed."),
    "not_losing_provider": _("Only the current provider answers this transfer."),
    "not_gaining_provider": _("Only the gaining provider withdraws this request."),
    # Webhook addresses (registry.destinations)
    "not_https": _("The address must start with https://."),
    "credentials_in_url": _("Remove the user name and password from the address."),
    "unresolvable_host": _("This host name does not resolve: check the address."),
    "address_not_public": _(
        "This address leads to a private or reserved network: the registry only calls public "
        "addresses."
    ),
    "webhook_not_found": _("You have no webhook."),
    "message_not_found": _("No such message of yours."),
    # Accounts
    "username_taken": _("This user name is taken: choose another."),
    "last_administrator": _("The organisation must keep at least one administrator."),
    # Plans
    "too_many_numbers": _("Too many numbers in one file."),
    "purpose_not_allowed": _("Your organisation may not resolve numbers for this purpose."),
    "not_found": _("This link is unknown, used or expired."),
}

# Why a number of a routing plan cannot be delivered (directory.transparency.records.Reason,
# and ``invalid:<code>`` for a number that does not parse).
UNROUTABLE = {
    "closed": _("the vault is closed"),
    "hold": _("delivery to the vault is stopped"),
    "provider_suspended": _("its provider is suspended"),
    "provider_withdrawn": _("its provider has left the federation"),
    "no_endpoint": _("its provider has no active delivery endpoint"),
    "no_valid_certificate": _("its provider has no valid encryption certificate"),
    "unknown": _("no vault has this number"),
    "registry_unavailable": _("its home registry did not answer"),
}


def explain_reason(reason: str) -> str:
    """A plan's reason code in the reader's language."""
    kind, _sep, code = reason.partition(":")
    if kind == "invalid":
        why = str(MESSAGES.get(code, code))
        return str(_("not a vault number: %(why)s") % {"why": why[:1].lower() + why[1:]})
    return str(UNROUTABLE.get(reason, reason))


def explain(error: DomainError | Exception) -> str:
    """The refusal in the reader's language."""
    code = getattr(error, "code", "")
    message = MESSAGES.get(str(code))
    if message is not None:
        return str(message)
    return str(getattr(error, "detail", "") or error)


def field_errors(error: DomainError, default_field: str | None = None) -> list[tuple[str, str]]:
    """A validation refusal as (form field, message) pairs, from the per-field codes the API
    answers in ``errors``; the refusal as a whole on ``default_field`` when it names none."""
    pairs = []
    for item in getattr(error, "extra", {}).get("errors", []):
        message = MESSAGES.get(str(item.get("code", "")))
        pairs.append((item.get("field") or default_field, str(message or explain(error))))
    return pairs or [(default_field, explain(error))]
