from django.apps import AppConfig


class AssistantsConfig(AppConfig):
    name = "assistants"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from assistants import signals  # noqa: F401  (connects the receivers)
