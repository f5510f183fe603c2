from django.apps import AppConfig


class FederationConfig(AppConfig):
    """Member registries: the signed bootstrap, registry-to-registry requests, peers' health."""

    name = "directory.federation"
    label = "federation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core.signals import request_finished

        from directory.federation import traffic

        request_finished.connect(traffic.flush_if_due, dispatch_uid="federation-traffic")
