from django.apps import AppConfig


class DirectoryConfig(AppConfig):
    """The read side: answers for issuers and monitors."""

    name = "directory"
    default_auto_field = "django.db.models.BigAutoField"
