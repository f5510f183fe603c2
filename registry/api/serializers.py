"""Input and output serializers of the provider self-service and onboarding API."""

from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from registry.models import Certificate, CertificateUse, Endpoint, Vault
from registry.models.organisations import LegalIdScheme, Purpose
from registry.numbers import format_display


class _ApplicationBase(serializers.Serializer):
    legal_name = serializers.CharField(max_length=200)
    legal_id_scheme = serializers.ChoiceField(choices=LegalIdScheme.choices, default="siren")
    legal_id = serializers.CharField(max_length=40)
    contact_name = serializers.CharField(max_length=200, required=False, default="")
    technical_email = serializers.EmailField()
    security_email = serializers.EmailField()


class ProviderApplicationSerializer(_ApplicationBase):
    certifications = serializers.ListField(
        child=serializers.CharField(max_length=100), max_length=20, required=False, default=list
    )


class IssuerApplicationSerializer(_ApplicationBase):
    purposes = serializers.ListField(
        child=serializers.ChoiceField(choices=Purpose.choices),
        max_length=len(Purpose.choices),
        allow_empty=False,
    )


class ApplicationOutputSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    legal_name = serializers.CharField()
    legal_id_scheme = serializers.CharField()
    legal_id = serializers.CharField()
    created_at = serializers.DateTimeField()


class EndpointInputSerializer(serializers.Serializer):
    transport_profile = serializers.ChoiceField(choices=[])
    url = serializers.URLField(max_length=500)
    document_types = serializers.ListField(
        child=serializers.CharField(max_length=100),
        max_length=50,
        required=False,
        default=list,
        help_text="Drawn from the registry's list (VAULT_DOCUMENT_TYPES), e.g. bank_statement",
    )
    activates_at = serializers.DateTimeField(required=False, allow_null=True, default=None)
    expires_at = serializers.DateTimeField(required=False, allow_null=True, default=None)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["transport_profile"].choices = settings.VAULT_TRANSPORT_PROFILES


class EndpointSerializer(serializers.ModelSerializer):
    class Meta:
        model = Endpoint
        fields = [
            "id",
            "transport_profile",
            "url",
            "document_types",
            "activates_at",
            "expires_at",
            "deactivated_at",
            "created_at",
        ]


class CertificateInputSerializer(serializers.Serializer):
    use = serializers.ChoiceField(choices=CertificateUse.choices)
    pem = serializers.CharField(max_length=64 * 1024, trim_whitespace=False)


class CertificateSerializer(serializers.ModelSerializer):
    # Declared, not derived: a PositiveIntegerField's range differs between SQLite and
    # PostgreSQL, and the committed OpenAPI schema must not depend on the database.
    key_size = serializers.IntegerField(read_only=True)

    class Meta:
        model = Certificate
        fields = [
            "id",
            "use",
            "fingerprint_sha256",
            "subject",
            "issuer",
            "serial_number",
            "not_before",
            "not_after",
            "key_type",
            "key_size",
            "created_at",
            "retired_at",
            "pem",
        ]


class VaultSerializer(serializers.ModelSerializer):
    display = serializers.SerializerMethodField()
    flags = serializers.ListField(child=serializers.CharField(), read_only=True)
    log_sequence = serializers.IntegerField(source="last_log_index", read_only=True)

    class Meta:
        model = Vault
        fields = ["number", "display", "status", "flags", "created_at", "closed_at", "log_sequence"]

    def get_display(self, vault: Vault) -> str:
        return format_display(vault.number)
