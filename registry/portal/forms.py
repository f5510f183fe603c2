"""Portal forms: labels and errors in the reader's language."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from registry.models import CertificateUse, Purpose, RejectionReason
from registry.portal.models import Role


class LoginForm(forms.Form):
    username = forms.CharField(label=_("User name"), max_length=150)
    password = forms.CharField(label=_("Password"), widget=forms.PasswordInput)
    code = forms.CharField(
        label=_("Code from your authenticator app, or a recovery code"),
        required=False,
        max_length=20,
        help_text=_("Leave empty only for your first login, before you set up the app."),
    )


class InvitationForm(forms.Form):
    full_name = forms.CharField(label=_("Your name"), max_length=150)
    username = forms.CharField(label=_("User name"), max_length=150)
    password = forms.CharField(label=_("Password"), widget=forms.PasswordInput)
    password2 = forms.CharField(label=_("Password again"), widget=forms.PasswordInput)

    def clean(self):
        data = super().clean()
        if data.get("password") != data.get("password2"):
            self.add_error("password2", _("The two passwords differ."))
        return data


class CodeForm(forms.Form):
    code = forms.CharField(label=_("Six-digit code shown by the app"), max_length=10)


class InviteForm(forms.Form):
    email = forms.EmailField(label=_("Email"))
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.OPERATOR)


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)


def _choices(values):
    return [(value, value) for value in values]


class EndpointForm(forms.Form):
    url = forms.URLField(
        label=_("Delivery address (https://…)"), max_length=500, assume_scheme="https"
    )
    transport_profile = forms.ChoiceField(label=_("Transport profile"), choices=())
    document_types = forms.MultipleChoiceField(
        label=_("Document types accepted"),
        choices=(),
        widget=forms.CheckboxSelectMultiple,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["transport_profile"].choices = _choices(settings.VAULT_TRANSPORT_PROFILES)
        labels = dict(Purpose.choices)
        self.fields["document_types"].choices = [
            (value, labels.get(value, value)) for value in settings.VAULT_DOCUMENT_TYPES
        ]


class CertificateForm(forms.Form):
    use = forms.ChoiceField(
        label=_("What the certificate is for"),
        choices=CertificateUse.choices,
        initial=CertificateUse.ENCRYPTION,
    )
    pem = forms.CharField(
        label=_("Certificate (PEM text)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
    )
    file = forms.FileField(label=_("…or a .pem / .crt file"), required=False)

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload:
            data["pem"] = upload.read(settings.VAULT_CERT_MAX_PEM + 1)
        if not data.get("pem"):
            self.add_error("pem", _("Paste the certificate or choose its file."))
        return data


class VaultSearchForm(forms.Form):
    q = forms.CharField(label=_("Vault number, in any form"), required=False, max_length=60)


class CloseForm(forms.Form):
    number = forms.CharField(label=_("Type the vault number again to confirm"), max_length=60)


class TransferRequestForm(forms.Form):
    vault = forms.CharField(label=_("Vault number"), max_length=60)
    code = forms.CharField(label=_("Transfer code given by the holder"), max_length=40)
    consent_reference = forms.CharField(
        label=_("Your reference of the holder's consent"), max_length=200
    )


class RejectForm(forms.Form):
    reason = forms.ChoiceField(label=_("Reason"), choices=RejectionReason.choices)
    comment = forms.CharField(
        label=_("Comment (optional)"), required=False, max_length=2000, widget=forms.Textarea
    )


class WebhookForm(forms.Form):
    # Checked by the service (https only, no credentials, public addresses), as for the API.
    url = forms.CharField(
        label=_("Webhook address (https://…)"),
        max_length=500,
        widget=forms.URLInput(attrs={"spellcheck": "false"}),
    )


class TokenForm(forms.Form):
    name = forms.CharField(label=_("Name (what it is for)"), max_length=100)
    expires_in_days = forms.IntegerField(
        label=_("Lifetime in days"), min_value=1, max_value=400, initial=90
    )


class PlanForm(forms.Form):
    file = forms.FileField(label=_("File of vault numbers (CSV or text, one per line)"))
    purpose = forms.ChoiceField(label=_("Purpose"), choices=(), required=False)

    def __init__(self, *args, purposes=(), **kwargs):
        super().__init__(*args, **kwargs)
        labels = dict(Purpose.choices)
        self.fields["purpose"].choices = [("", "—")] + [(p, labels.get(p, p)) for p in purposes]


class ApplicationForm(forms.Form):
    legal_name = forms.CharField(label=_("Legal name"), max_length=200)
    legal_id = forms.CharField(label=_("SIREN"), max_length=40)
    contact_name = forms.CharField(label=_("Contact name"), max_length=200, required=False)
    technical_email = forms.EmailField(label=_("Technical contact email"))
    security_email = forms.EmailField(label=_("Security contact email"))


class ProviderApplicationForm(ApplicationForm):
    certifications = forms.CharField(
        label=_("Certifications (comma-separated, e.g. NF Z42-020)"), required=False
    )


class IssuerApplicationForm(ApplicationForm):
    purposes = forms.MultipleChoiceField(
        label=_("Purposes"), choices=Purpose.choices, widget=forms.CheckboxSelectMultiple
    )


class NumberCheckForm(forms.Form):
    number = forms.CharField(label=_("Vault number"), max_length=60)
