"""Documentation of the lookup answer (the view builds it directly, off the ORM hot path)."""

from rest_framework import serializers


class ProviderIdentitySerializer(serializers.Serializer):
    id = serializers.UUIDField()
    legal_name = serializers.CharField()
    legal_id = serializers.CharField(help_text="scheme:identifier, e.g. siren:552100554")
    status = serializers.CharField()


class EndpointAnswerSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    transport_profile = serializers.CharField()
    url = serializers.URLField()
    document_types = serializers.ListField(child=serializers.CharField())
    activates_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField(allow_null=True)


class CertificateAnswerSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    fingerprint_sha256 = serializers.CharField()
    key_type = serializers.CharField()
    not_before = serializers.DateTimeField()
    not_after = serializers.DateTimeField()
    pem = serializers.CharField()


class PreviousProviderSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    moved_at = serializers.DateTimeField(help_text="When the vault left this provider")
    until = serializers.DateTimeField(help_text="When the lookup stops naming it")


class RecordEvidenceSerializer(serializers.Serializer):
    key = serializers.CharField(help_text="vault:<number> or provider:<id>")
    record = serializers.JSONField(
        allow_null=True, help_text="The complete record as the log carries it (null: absent)"
    )
    proof = serializers.CharField(help_text="Base64 multiproof of the key in the state map")


class LookupProofSerializer(serializers.Serializer):
    checkpoint = serializers.CharField(
        help_text="The signed note (log size, log root, map root, time) and its cosignatures"
    )
    at = serializers.CharField()
    vault = RecordEvidenceSerializer()
    provider = RecordEvidenceSerializer(allow_null=True)


class VaultRoutingSerializer(serializers.Serializer):
    number = serializers.CharField(help_text="Normalised: 20 characters, no spaces")
    display = serializers.CharField(help_text="Groups of four, as printed for holders")
    status = serializers.ChoiceField(choices=["active", "closed"])
    flags = serializers.ListField(child=serializers.CharField())
    deliverable = serializers.BooleanField()
    reasons = serializers.ListField(
        child=serializers.ChoiceField(
            choices=[
                "closed",
                "hold",
                "provider_suspended",
                "provider_withdrawn",
                "no_endpoint",
                "no_endpoint_for_purpose",
                "no_valid_certificate",
            ]
        )
    )
    provider = ProviderIdentitySerializer()
    endpoints = EndpointAnswerSerializer(many=True)
    encryption_certificates = CertificateAnswerSerializer(many=True)
    previous_provider = PreviousProviderSerializer(
        allow_null=True,
        help_text="The provider the vault left, for 30 days after a move (null otherwise): "
        "a refusal from it means the route you hold is old",
    )
    at = serializers.CharField(help_text="The time this answer holds for (RFC 3339, UTC)")
    proof = LookupProofSerializer(
        help_text="The checkpoint and the vault's and provider's records with their map proofs: "
        "every field above is computed from these records"
    )
    receipt = serializers.CharField(
        help_text="Compact JWS (alg Ed25519) over the question, every proven field of this "
        "answer, the checkpoint and the records' map values"
    )
