from django.apps import AppConfig


class FederationConfig(AppConfig):
    """Member registries: the signed bootstrap, registry-to-registry requests, peers' health."""

    name = "directory.federation"
    label = "federation"
    default_auto_field = "django.db.models.BigAutoField"
