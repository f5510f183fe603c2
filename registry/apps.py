from django.apps import AppConfig


class RegistryConfig(AppConfig):
    """The book of record: organisations, vaults, routing, tokens and the log."""

    name = "registry"
    verbose_name = "Vault Registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from registry import checks  # noqa: F401  (registers the system checks)
        from registry.api import schema  # noqa: F401  (registers the OpenAPI auth extension)
