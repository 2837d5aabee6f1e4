from django.apps import AppConfig


class IngestionConfig(AppConfig):
    name = "ingestion"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.db.models.signals import post_migrate

        from ingestion import signals  # connects the receivers

        post_migrate.connect(signals.extensions_updated, sender=self, dispatch_uid="ingestion.extensions_updated")
